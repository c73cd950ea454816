"""Hostile data and hostile queries against a real TensorBoard, under both loaders.

The logdir (tests/hostile_data.py) is written with the real recorder: NaN,
±Inf and ±3e38 values (also as the latest loss), one-point and empty runs,
documents from "another tool" with bare NaN tokens or no JSON at all, and
hostile run names. A real ``tensorboard`` process serves it with the Rust
loader (``--load_fast=true``) and with the Python one, and every route of the
plugin (read from `TTSMonPlugin.get_plugin_apps`) is asked, for every run,
with valid parameters and with seeded random hostile ones.

What a user of the tab must never see, checked on every answer:

- an answer >= 500 (TensorBoard's opaque "internal error": a bug of ours);
- a 4xx whose body is not one readable plain-text sentence;
- a 200 JSON body that a strict parser rejects (bare ``NaN`` / ``Infinity``
  tokens: browsers' ``JSON.parse`` throws on them, and the tab goes blank);
- a file served from outside the tab's static folder.

and, once per server: every run with ttsmon data listed by ``runs`` under
its exact name (none without), and ``overview`` showing the latest loss
(``"NaN"``, ``"Infinity"``, float32's 3e38) where it is hostile.

Every failure is collected and reported in one assertion message (route,
query, status, head of the body, and the exceptions in TensorBoard's log), so
all of them can be fixed at once. ``TTSMON_HOSTILE_SEED`` changes the seed.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import hostile_data
import pytest
from conftest import NO_TF
from tbserver import tensorboard_server
from tensorboard.plugins import base_plugin

from tb_plugin_ttsmon.plugin import TTSMonLoader

# The TensorBoard process is the same in both passes of `make test` (the
# blocker acts in the pytest process only), so one pass is enough.
pytestmark = pytest.mark.skipif(NO_TF, reason="runs once, in the TensorFlow pass")

SEED = os.environ.get("TTSMON_HOSTILE_SEED", "ttsmon-hostile-1")
# Bounded work: about 1900 requests per loader.
HOSTILE_PER_ROUTE = 100
WORKERS = 4
PLUGIN_PREFIX = "data/plugin/ttsmon"
PATH_SAFE = "/%\\"
# An error message is one sentence; echoing a 3000-character query value is not.
MAX_MESSAGE_CHARS = 1000

Query = list[tuple[str, str]]


def plugin_routes() -> list[str]:
    """The plugin's routes, as the plugin itself declares them."""
    plugin = TTSMonLoader().load(base_plugin.TBContext(logdir="", data_provider=None))
    return sorted(plugin.get_plugin_apps())


# -- valid queries, per route ------------------------------------------------------


def _run_only(run: str, tags: list[str]) -> list[Query]:
    return [[("run", run)]]


def _series(run: str, tags: list[str]) -> list[Query]:
    all_tags = [("tag", t) for t in tags[:200]] or [("tag", "train/loss")]
    return [
        [("run", run), *all_tags],
        [("run", run), *all_tags, ("points", "2")],
        [("run", run), *all_tags, ("points", "3")],
        [("run", run), *all_tags, ("points", "100000")],
        [("run", run), *(all_tags * 201)[:201]],  # one tag over the limit
    ]


def _export(run: str, tags: list[str]) -> list[Query]:
    return [[("run", run), ("format", "csv")], [("run", run), ("format", "json")]]


def _anomalies(run: str, tags: list[str]) -> list[Query]:
    return [[("run", run)], [("run", run), *[("tag", t) for t in tags[:200]]]]


def _heatmap(run: str, tags: list[str]) -> list[Query]:
    return [[("run", run)], [("run", run), ("buckets", "2")], [("run", run), ("buckets", "2000")]]


def _pair(tags: list[str]) -> tuple[str, str]:
    loss = "train/loss" if "train/loss" in tags else (tags[0] if tags else "train/loss")
    other = next((t for t in tags if t != loss), loss)
    return loss, other


def _correlation(run: str, tags: list[str]) -> list[Query]:
    loss, other = _pair(tags)
    return [
        [("run", run), ("tag", loss), ("tag", other)],
        [("run", run), *[("tag", t) for t in tags[:40]]],
        [("run", run), *[("tag", t) for t in tags[:41]]],  # over the limit where 41 exist
    ]


def _scatter(run: str, tags: list[str]) -> list[Query]:
    loss, other = _pair(tags)
    return [
        [("run", run), ("x", loss), ("y", other)],
        [("run", run), ("x", other), ("y", other), ("points", "2")],
    ]


def _series_batch(run: str, tags: list[str]) -> list[Query]:
    some = tags[:43] or ["train/loss"]
    since = {t: 5 for t in some}
    entries = [
        [{"run": run, "tags": some}],
        [{"run": run, "tags": some, "since_step": since, "points": 2}],
        [{"run": run, "tags": some}, {"run": run + "-missing", "tags": some}],
        [{"run": run, "tags": some, "since_step": {t: 2**62 for t in some}}],
        [{"run": run, "tags": some, "points": 1}],  # 400
        [{"run": run}],  # 400: no tags
        {"run": run},  # 400: not a list
    ]
    return [[("requests", json.dumps(e))] for e in entries]


def _since(run: str, tags: list[str]) -> list[Query]:
    tag = tags[0] if tags else "train/loss"
    return [
        [("run", run), ("tag", tag), ("since_step", "0")],
        [("run", run), ("tag", tag), ("since_step", "-5")],
        [("run", run), ("tag", tag), ("since_step", str(2**62))],
    ]


def _no_query(run: str, tags: list[str]) -> list[Query]:
    return [[]]


def _job(run: str, tags: list[str]) -> list[Query]:
    job, folder = hostile_data.HOSTILE_JOB, hostile_data.HOSTILE_JOB_FOLDER
    return [
        [("job", job)],
        [("job", job), ("folder", folder)],
        [("job", job), ("folder", folder), ("buckets", "2")],
        [("job", job), ("buckets", "2000")],
        [("job", job), ("folder", "")],  # 404: not at the top level
        [("job", "no such job")],
    ]


def _compare(run: str, tags: list[str]) -> list[Query]:
    return [
        [("a", run), ("b", run)],
        [("a", run), ("b", run + "-missing")],  # 404
        [("b", run)],  # 400: no a
    ]


# Route -> valid and boundary queries for one run (its series tags given). A route the
# plugin adds must get a line here: test_every_route_has_valid_queries.
VALID: dict[str, Callable[[str, list[str]], list[Query]]] = {
    "/index.js": _no_query,
    "/static/*": _no_query,
    "/runs": _no_query,
    "/tags": _run_only,
    "/series": lambda run, tags: _series(run, tags) + _since(run, tags),
    "/series_batch": _series_batch,
    "/versions": _no_query,
    "/stats": _no_query,
    "/overview": _run_only,
    "/export": _export,
    "/alerts": _run_only,
    "/anomalies": _anomalies,
    "/heatmap": _heatmap,
    "/correlation": _correlation,
    "/scatter": _scatter,
    "/findings": _run_only,
    "/profiles": _run_only,
    "/job": _job,
    "/serving": _heatmap,  # run and buckets, as the heatmap
    "/compare": _compare,
}
# Routes answered once per server, not once per run.
PER_SERVER = {"/index.js", "/static/*", "/runs", "/versions", "/stats", "/job"}
# The only one of STATIC_PATHS that names a file of the tab.
SERVED_STATIC_PATHS = ("static/index.css",)
STATIC_PATHS = (
    *SERVED_STATIC_PATHS,
    "static/..%2f..%2fsetup.py",
    "static/%2e%2e/plugin/plugin.py",
    "static/..\\..\\metadata.py",
    "static/%2e%2e%5c%2e%2e%5cmetadata.py",
    "static//etc/passwd",
    "static/",
    "static/" + "x" * 3000,
    "static/%00",
    "static/ሙከራ.js",
)


# -- hostile queries ----------------------------------------------------------------

PARAMS = (
    "run",
    "tag",
    "points",
    "buckets",
    "x",
    "y",
    "format",
    "since_step",
    "requests",
    "job",
    "folder",
)
UNKNOWN_PARAMS = ("foo", "Run", "run[]", "callback", "tag ", "__proto__", "experiment", "ሙከራ")
HOSTILE_VALUES = (
    "",
    " ",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "-1",
    "-0",
    "0",
    "1",
    "2",
    "1.5",
    "1e9",
    "0x10",
    "99999999999999999999999999",
    "9" * 3000,
    "x" * 3000,
    "１２",  # fullwidth digits
    "٣",  # Arabic-Indic digit
    "ሙከራ",
    "🔥",
    "null",
    "[]",
    "{}",
    "true",
    "csv ",
    "JSON",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%2e%2e%2f",
    "a\nb",
    "\x00",
    "\u202e",  # right-to-left override
    "train/loss/",
    "/train/loss",
    "train//loss",
    "run/facts",
)
# Pieces of a query string that no urlencode would produce.
RAW_PIECES = ("%zz", "run=%ff%fe", "tag=%E1%88", "&&", "=", "run", ";", "run=a%00b", "points=%20")


@dataclasses.dataclass
class Server:
    """A TensorBoard serving the hostile logdir."""

    url: str
    log_path: str
    logdir: hostile_data.Logdir
    not_loaded: list[str] = dataclasses.field(default_factory=list)


def _hostile_value(rng: random.Random, logdir: hostile_data.Logdir, param: str) -> str:
    roll = rng.random()
    if param == "run" and roll < 0.5:
        run = rng.choice(logdir.runs)
        return rng.choice([run, run, run, run + "/", run.upper(), run[: len(run) // 2]])
    if roll < 0.4 and param in ("tag", "x", "y"):
        run = rng.choice(logdir.ttsmon_runs)
        return rng.choice(logdir.series_tags[run] or ["train/loss"])
    if roll < 0.5 and param == "job":
        return hostile_data.HOSTILE_JOB
    if roll < 0.5 and param == "folder":
        return hostile_data.HOSTILE_JOB_FOLDER
    if roll < 0.5 and param == "format":
        return rng.choice(["csv", "json"])
    return rng.choice(HOSTILE_VALUES)


def hostile_queries(
    rng: random.Random, logdir: hostile_data.Logdir, count: int
) -> Iterator[tuple[Query, str]]:
    """`count` random queries: (pairs, raw suffix appended to the encoded string)."""
    for _ in range(count):
        query: Query = []
        for param in PARAMS:
            # Missing, once (most often), or repeated.
            for _ in range(rng.choice([0, 0, 1, 1, 1, 2, 3])):
                query.append((param, _hostile_value(rng, logdir, param)))
        if rng.random() < 0.3:
            query.append((rng.choice(UNKNOWN_PARAMS), rng.choice(HOSTILE_VALUES)))
        rng.shuffle(query)
        raw = rng.choice(RAW_PIECES) if rng.random() < 0.2 else ""
        yield query, raw


# -- one request, and what it must look like ----------------------------------------------


@dataclasses.dataclass
class Answer:
    """One request and its answer."""

    route: str
    path: str
    query: Query
    raw: str
    status: int
    content_type: str
    body: bytes

    def describe(self) -> str:
        """The request and the head of the answer, long values cut, for a failure list."""
        shown = [(k, v if len(v) <= 40 else f"{v[:40]}...({len(v)} chars)") for k, v in self.query]
        path = self.path if len(self.path) <= 80 else f"{self.path[:80]}..."
        head = self.body[:200].decode("utf-8", "replace")
        raw = f" + {self.raw!r}" if self.raw else ""
        return f"{path} {shown}{raw} -> {self.status} {head!r}"


def _encode(query: Query, raw: str) -> str:
    text = "&".join(
        f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}" for k, v in query
    )
    return "&".join(p for p in (text, raw) if p)


def fetch(base_url: str, route: str, path: str, query: Query, raw: str = "") -> Answer:
    """GETs `path` under the plugin's prefix; no answer at all reads as status 599."""
    qs = _encode(query, raw)
    # The path's own percent-escapes and backslashes go as they are.
    url = f"{base_url}{PLUGIN_PREFIX}/{urllib.parse.quote(path, safe=PATH_SAFE)}"
    url += f"?{qs}" if qs else ""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            status, ctype, body = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, body = e.code, e.headers.get("Content-Type", ""), e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        status, ctype, body = 599, "", f"no answer: {e!r}".encode()
    return Answer(route, path, query, raw, status, ctype, body)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"bare {token} token (must be the string {token!r})")


def problem(answer: Answer) -> str | None:
    """What is wrong with `answer` for a user, or None."""
    if answer.status >= 500:
        return "server error"
    try:
        text = answer.body.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"body is not UTF-8 ({e})"
    if 400 <= answer.status < 500:
        if not answer.content_type.startswith("text/plain"):
            return f"error body is {answer.content_type!r}, not text/plain"
        message = text.strip()
        if not message:
            return "empty error message"
        if "Traceback" in message or message.lstrip().startswith("<"):
            return "error body is not a plain message"
        if len(message) > MAX_MESSAGE_CHARS:
            return (
                f"error message over {MAX_MESSAGE_CHARS} characters ({len(message)}: it echoes "
                "a query value whole, which should be cut)"
            )
        return None
    if answer.status != 200:
        return f"unexpected status {answer.status}"
    if answer.route == "/static/*" and answer.path not in SERVED_STATIC_PATHS:
        return "served a file outside the static folder's list"
    if answer.content_type.startswith("application/json"):
        try:
            json.loads(text, parse_constant=_reject_constant)
        except ValueError as e:
            return f"not strict JSON: {e}"
    return None


def _tensorboard_exceptions(log_path: str) -> list[str]:
    """The distinct exceptions (last traceback line and our innermost frame) in the log."""
    try:
        with open(log_path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found: collections.Counter[str] = collections.Counter()
    frame = ""
    in_traceback = False
    for line in lines:
        if line.startswith("Traceback"):
            in_traceback, frame = True, ""
        elif in_traceback and "tb_plugin_ttsmon" in line and line.strip().startswith("File"):
            frame = re.sub(r"^.*tb_plugin_ttsmon", "tb_plugin_ttsmon", line.strip())
        elif in_traceback and line and not line.startswith((" ", "\t")):
            found[f"{line[:200]} (at {frame or '?'})"] += 1
            in_traceback = False
    return [f"{n}x {text}" for text, n in found.most_common()]


# -- the TensorBoard under test ----------------------------------------------------------------


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> hostile_data.Logdir:
    return hostile_data.write_logdir(str(tmp_path_factory.mktemp("hostile")))


def _wait_until_loaded(url: str, logdir: hostile_data.Logdir) -> list[str]:
    """Waits (bounded) until TensorBoard serves every run's series; returns what never came."""
    deadline = time.monotonic() + 60
    pending = {r for r in logdir.ttsmon_runs if logdir.series_tags[r]}
    while pending and time.monotonic() < deadline:
        for run in sorted(pending):
            answer = fetch(url, "/tags", "tags", [("run", run)])
            if answer.status == 404:
                continue  # not loaded yet
            if answer.status != 200:
                pending.discard(run)  # the main check reports it
                continue
            try:
                listed = {t["tag"] for t in json.loads(answer.body)["tags"]}
            except (ValueError, KeyError, TypeError):
                pending.discard(run)
                continue
            if set(logdir.series_tags[run]) - {hostile_data.FLOAT64_TAG} <= listed:
                pending.discard(run)
        if pending:
            time.sleep(0.5)
    return [f"run {r!r} not loaded after 60 s" for r in sorted(pending)]


@pytest.fixture(scope="module", params=[True, False], ids=["rust_loader", "python_loader"])
def server(request: pytest.FixtureRequest, logdir: hostile_data.Logdir) -> Iterator[Server]:
    with tensorboard_server(logdir.path, load_fast=request.param) as url:
        port = urllib.parse.urlsplit(url).port
        log_path = os.path.join(logdir.path, f".tensorboard-{port}.log")
        yield Server(url, log_path, logdir, _wait_until_loaded(url, logdir))


def _route_path(route: str, rng: random.Random) -> str:
    if route == "/static/*":
        return rng.choice(STATIC_PATHS)
    return route.lstrip("/")


def _requests(server: Server, routes: list[str]) -> list[tuple[str, str, Query, str]]:
    """Every (route, path, query, raw) this test sends, valid ones first."""
    logdir = server.logdir
    out: list[tuple[str, str, Query, str]] = []
    for route in routes:
        valid = VALID.get(route, _run_only)
        if route == "/static/*":
            out.extend((route, path, [], "") for path in STATIC_PATHS)
        elif route in PER_SERVER:
            out.extend((route, route.lstrip("/"), q, "") for q in valid("", []))
        else:
            for run in logdir.runs:
                tags = logdir.series_tags.get(run, [])
                out.extend((route, route.lstrip("/"), q, "") for q in valid(run, tags))
        rng = random.Random(f"{SEED}-{route}")
        for query, raw in hostile_queries(rng, logdir, HOSTILE_PER_ROUTE):
            out.append((route, _route_path(route, rng), query, raw))
    return out


# -- the tests ---------------------------------------------------------------------------------


def test_every_route_has_valid_queries() -> None:
    """A route the plugin adds is asked with valid parameters too, not only hostile ones."""
    assert sorted(VALID) == plugin_routes()


def test_no_route_fails_on_hostile_data_or_queries(server: Server) -> None:
    requests = _requests(server, plugin_routes())
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        answers = list(pool.map(lambda r: fetch(server.url, *r), requests))

    failures = list(server.not_loaded)
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    for answer in answers:
        statuses[(answer.route, answer.status)] += 1
        what = problem(answer)
        if what is not None:
            failures.append(f"{what}: {answer.describe()}")
    failures.extend(_user_visible_problems(server, answers))

    if failures:
        summary = collections.Counter(re.split(r"[:(]", f, maxsplit=1)[0] for f in failures)
        lines = [
            f"{len(failures)} of {len(answers)} answers are wrong (seed {SEED!r}):",
            *(f"  {n}x {kind}" for kind, n in summary.most_common()),
            "statuses: " + ", ".join(f"{r} {s}: {n}" for (r, s), n in sorted(statuses.items())),
            "each:",
            *(f"  {f}" for f in failures),
            "exceptions in TensorBoard's log:",
            *(f"  {e}" for e in _tensorboard_exceptions(server.log_path)),
        ]
        pytest.fail("\n".join(lines), pytrace=False)


def _user_visible_problems(server: Server, answers: list[Answer]) -> list[str]:
    """What the tab would show wrongly: a run missing from the list, the latest loss.

    Hostile names must be listed exactly as written (the run picker shows them).
    """
    problems = []
    logdir = server.logdir
    runs = [a for a in answers if a.route == "/runs" and not a.query and a.status == 200]
    for answer in runs[:1]:
        listed = {r["run"] for r in json.loads(answer.body)["runs"]}
        missing = sorted(set(logdir.ttsmon_runs) - listed)
        if missing:
            problems.append(f"runs with ttsmon data missing from GET runs: {missing}")
        extra = sorted(listed & set(logdir.other_runs))
        if extra:
            problems.append(f"runs without ttsmon data listed by GET runs: {extra}")
    for run, expected in logdir.latest_loss.items():
        answer = fetch(server.url, "/overview", "overview", [("run", run)])
        if answer.status != 200:
            continue  # reported above
        loss = json.loads(answer.body).get("training", {}).get("loss")
        if loss != expected:
            problems.append(
                f"overview of {run!r}: training.loss is {loss!r}, expected {expected!r}"
            )
    return problems
