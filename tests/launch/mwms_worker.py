"""One worker of a 2-worker `MultiWorkerMirroredStrategy` job of a Keras model (`TF_CONFIG`).

Started twice by test_launchers.py with `TF_CONFIG` naming two loopback
ports. Keras 3's `fit` fails under MultiWorkerMirroredStrategy (it passes
`PerReplica` values where tensors are expected: keras-team/keras#20585), so
the model trains in TensorFlow's custom-loop form for that strategy: the
Keras model and optimizer, the step run on every replica by
`strategy.run`, recorded with `Monitor.step` and `log_training`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import tb_plugin_ttsmon as ttsmon


def main() -> None:
    logdir = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    # The strategy first: it sets up the collectives before any other op.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    global_batch = 16
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * global_batch, 8)).astype("float32")
    y = x.sum(1, keepdims=True)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch).repeat()
    batches = iter(strategy.experimental_distribute_dataset(data))
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
        )
        optimizer = keras.optimizers.SGD(0.01)

    def replica_step(xb, yb):
        with tf.GradientTape() as tape:
            per_example = tf.reduce_mean(tf.square(model(xb, training=True) - yb), axis=1)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)  # all-reduces across workers
        return loss

    @tf.function
    def train_step(batch):
        per_replica = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    with ttsmon.Monitor(logdir, interval=0.2) as mon:
        mon.log_model(model)
        for step in range(1, steps + 1):
            batch = next(batches)
            with mon.step(step):
                loss = train_step(batch)
            mon.log_training(step, loss=float(loss))
        print(f"wrote {mon.log_dir}", flush=True)


if __name__ == "__main__":
    main()
