"""Packaging for tb_plugin_ttsmon (the `ttsmon` TensorBoard plugin and recorder)."""

import os

from setuptools import find_packages, setup

_here = os.path.dirname(os.path.abspath(__file__))
_version: dict = {}
with open(os.path.join(_here, "tb_plugin_ttsmon", "version.py"), encoding="utf-8") as f:
    exec(f.read(), _version)

with open(os.path.join(_here, "README.md"), encoding="utf-8") as f:
    _long_description = f.read()

setup(
    name="tb_plugin_ttsmon",
    version=_version["VERSION"],
    description="TensorBoard tab for system, GPU, training and inference monitoring of TTS jobs",
    long_description=_long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["tb_plugin_ttsmon", "tb_plugin_ttsmon.*"]),
    package_data={"tb_plugin_ttsmon": ["static/*", "plugin/*.md", "charts.json"]},
    install_requires=[
        "tensorboard>=2.16",
        "psutil>=5.9",
        "nvidia-ml-py>=12.535",
        "werkzeug>=2.2",
        "numpy>=1.23",
        "matplotlib>=3.6",  # charts of `ttsmon report` (static HTML)
        # CRC32C in C for the event files' record framing (TensorBoard's is pure Python).
        "google-crc32c>=1.5",
        # The /metrics endpoint for Prometheus (Monitor(prometheus_port=...), watch).
        "prometheus_client>=0.17",
        # Run directories in object stores (s3://, gs://, az://): the rolling
        # object writer goes through fsspec; each store's package is an extra.
        "fsspec>=2023.1",
    ],
    extras_require={
        "tf": ["tensorflow>=2.16"],
        # Log directories in S3 (and S3-compatible stores) or Google Cloud Storage.
        "s3": ["s3fs>=2023.1"],
        "gcs": ["gcsfs>=2023.1"],
        # The Profile tab, and the xprof package our profile summaries read with
        # (raw_to_tool_data); tested with 2.24.
        "profile": ["tensorboard-plugin-profile>=2.24,<2.25"],
        # What `make test` installs: TensorFlow's CPU build and the tools.
        "test": [
            "tensorflow-cpu>=2.16",
            "pytest>=8",
            "ruff>=0.6",
            "mypy>=1.10",
            "types-psutil",
            "types-setuptools",
            "playwright>=1.40",
            "tensorboard-plugin-profile>=2.24,<2.25",
            # S3: the writer's s3fs, moto's S3 server for the tests, and the
            # boto3 that TensorBoard reads s3:// logdirs with.
            "s3fs>=2023.1",
            "moto[server]>=5",
            "boto3>=1.28",
        ],
    },
    entry_points={
        "tensorboard_plugins": ["ttsmon = tb_plugin_ttsmon.plugin:TTSMonLoader"],
        "console_scripts": ["ttsmon = tb_plugin_ttsmon.cli:main"],
    },
    classifiers=[
        "Framework :: TensorFlow",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: System :: Monitoring",
    ],
)
