"""Re-run the attacks of issues 11 and 18 against a fresh home and print what happened: bad files, truncated
updates, SIGKILLs during ingest and remove, concurrent writers, a search loop during an ingest, damaged derived
files, a damaged catalog and vector index, litassist's own paths occupied, a full disk, ids colliding across
files, and a backup of a damaged home.

    python benchmarks/attacks.py [--kills 8] [--keep DIR]

Every attack runs the `litassist` CLI in a fresh process, as a user would. Columns: tries; handled (a clear
one-line error naming the file or the problem, or the input stored as it should be); tracebacks; hangs (killed
after a timeout); data lost (papers, sources or search results missing or changed afterwards).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from hostile import (
    DAMAGE,
    abstract,
    garble,
    special_files,
    start_cli,
    write_bad_files,
    write_handled_files,
    write_overlapping,
)

from assistant import Assistant
from assistant.api import DEMO_CORPUS as SEEDS

SMALL = ["arxiv-abstracts.txt", "paper-page-sparse-training-theory.txt"]
TIMEOUT = 300


@dataclass
class Row:
    attack: str
    tries: int = 0
    handled: int = 0
    tracebacks: int = 0
    hangs: int = 0
    lost: int = 0

    def add(self, handled: bool, traceback: bool = False, hung: bool = False, lost: bool = False) -> None:
        self.tries += 1
        self.handled += handled and not (traceback or hung or lost)
        self.tracebacks += traceback
        self.hangs += hung
        self.lost += lost


@dataclass
class Run:
    code: int | None
    out: str
    err: str

    @property
    def hung(self) -> bool:
        return self.code is None

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.out + self.err

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith(prefix)]


def finish(proc: subprocess.Popen[str]) -> Run:
    out, err = proc.communicate(timeout=TIMEOUT)
    return Run(proc.returncode, out, err)


def cli(home: Path, *args: str, timeout: float = TIMEOUT, **env: str) -> Run:
    proc = start_cli(home, *args, **env)
    try:
        out, err = proc.communicate(timeout=timeout)
        return Run(proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Run(None, out, err)


def snapshot(home: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every paper's content key and source files: what must survive an attack unchanged."""
    return {sp.paper.paper_id: (sp.content_key, tuple(sorted(s.file for s in sp.paper.sources)))
            for sp in Assistant(home=home).store.all_papers()}


def consistent(home: Path) -> bool:
    """The lexical index, the dense index and the papers describe the same library, and once a writer has run
    (it finishes a killed one's work) Chroma holds exactly the vectors the catalog lists."""
    cli(home, "remove", "no-such-paper")
    lib = Assistant(home=home)
    papers = {p.paper_id for p in lib.papers()}
    dense = {h.paper_id for h in lib.search("learning", k=len(papers) + 10, mode="dense")}
    with lib.store.reading():
        lexical = lib.store.catalog.connection().execute("SELECT count(*) FROM lexical_docs").fetchone()[0]
    stats = lib.stats()
    return (dense == papers and lexical == len(papers) and lib.store.vectors.count("chunks") == stats.chunks
            and lib.store.vectors.count("papers") == stats.papers)


def baseline(root: Path) -> Path:
    """A home holding the 16 papers of two seed files."""
    home = root / "baseline"
    if not home.exists():
        corpus = root / "baseline-corpus"
        corpus.mkdir()
        for name in SMALL:
            shutil.copy(SEEDS / name, corpus / name)
        assert cli(home, "ingest", str(corpus)).code == 0
    return home


def copy_of(root: Path, name: str) -> Path:
    target = root / name
    shutil.copytree(baseline(root), target)
    return target


def bad_files(root: Path) -> list[Row]:
    home = copy_of(root, "bad-files")
    before = snapshot(home)
    failing, stored = Row("bad files (one per run: deep JSON, cut exports, conflicts, odd names)"), Row(
        "hostile but valid files (10^6-digit id, CSL dates, surrogates, 300 braces, markup)")
    specials = Row("FIFO, /dev/zero, /dev/urandom, sparse 3 GB file")
    expected = write_bad_files(root / "bad")
    for name, word in expected.items():
        run = cli(home, "ingest", str(root / "bad" / name), timeout=60)
        failed = run.lines("failed ")
        ok = run.code == 2 and len(failed) == 1 and word.lower() in failed[0].lower()
        failing.add(ok, run.traceback, run.hung, snapshot(home) != before)
    for path, word in special_files(root / "special").items():
        run = cli(home, "ingest", path, timeout=60)
        failed = run.lines("failed ")
        specials.add(run.code == 2 and len(failed) == 1 and word in failed[0], run.traceback, run.hung,
                     snapshot(home) != before)
    handled = write_handled_files(root / "handled")
    for name in handled:
        run = cli(home, "ingest", str(root / "handled" / name), timeout=120)
        now = snapshot(home)
        added = {pid for pid in now if pid not in before}
        stored.add(run.code == 0 and len(added) == 1, run.traceback, run.hung,
                   any(now.get(pid, (None,))[0] != key for pid, (key, _) in before.items()))
        before = now
    return [failing, specials, stored]


def truncated_updates(root: Path) -> Row:
    """A good export ingested, then the same file cut short, or with rows dropped: refused, nothing lost."""
    row = Row("truncated or shrunk updates (RIS, CSV, JSONL, JSON)")
    records = [{"id": f"r{i}", "title": f"Paper {i}", "abstract": abstract(f"topic {i}")} for i in range(10)]
    whole = {
        "refs.ris": "".join(f"TY  - JOUR\nTI  - {r['title']}\nAB  - {r['abstract']}\nER  - \n" for r in records),
        "refs.csv": "id,title,abstract\n" + "".join(f"{r['id']},{r['title']},\"{r['abstract']}\"\n" for r in records),
        "refs.jsonl": "".join(json.dumps(r) + "\n" for r in records),
        "refs.json": json.dumps(records, indent=1),
    }
    for name, text in whole.items():
        home = copy_of(root, f"update-{name}")
        source = root / "updates" / name
        source.parent.mkdir(exist_ok=True)
        source.write_text(text, encoding="utf-8")
        cli(home, "ingest", str(source))
        before = snapshot(home)
        cuts = [len(text) // 3, len(text) // 2, len(text) - 25]
        for cut in cuts:
            source.write_text(text[:cut], encoding="utf-8")
            run = cli(home, "ingest", str(source))
            row.add(run.code == 2 and len(run.lines("failed ")) == 1, run.traceback, run.hung, snapshot(home) != before)
    return row


def killed_ingests(root: Path, kills: int) -> Row:
    """SIGKILL an ingest of the seed corpus at a random moment, then search, then ingest again."""
    row = Row("SIGKILL during ingest (random moment), then search and re-ingest")
    rng = random.Random(11)
    for attempt in range(kills):
        home = root / f"killed-{attempt}"
        command = [sys.executable, "-c", "from assistant.cli import run; run()", "--home", str(home), "ingest",
                   str(SEEDS)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4, 25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        search = cli(home, "search", "reinforcement learning", "--json")
        again = cli(home, "ingest", str(SEEDS))
        complete = Assistant(home=home).stats()
        whole = (complete.papers, complete.sources) == (179, 5) and consistent(home)
        row.add(search.code == 0 and again.code == 0, search.traceback or again.traceback,
                search.hung or again.hung, not whole)
    return row


def concurrent_writers(root: Path, tries: int = 2) -> Row:
    """Two ingests at once of files sharing DOIs, then `remove --source` of one of them."""
    row = Row("two ingests at once (shared DOIs), then remove --source")
    for attempt in range(tries):
        home = root / f"concurrent-{attempt}"
        x, y = write_overlapping(root / f"concurrent-files-{attempt}", "c")
        runs = [finish(p) for p in [start_cli(home, "ingest", str(f)) for f in (x, y)]]
        papers = {p.doi: {Path(s.file).name for s in p.sources} for p in Assistant(home=home).papers()}
        merged = len(papers) == 9 and all(len(papers[f"10.5555/c.{i}"]) == 2 for i in range(3, 6))
        removal = cli(home, "remove", "--source", str(y))
        left = {p.doi: {Path(s.file).name for s in p.sources} for p in Assistant(home=home).papers()}
        kept = sorted(left) == [f"10.5555/c.{i}" for i in range(6)] and consistent(home)
        row.add(all(r.code == 0 for r in runs) and removal.code == 0, any(r.traceback for r in [*runs, removal]),
                False, not (merged and kept))
    return row


def new_home_rush(root: Path, rounds: int = 3) -> Row:
    """Into a new, empty home at once: two ingests sharing DOIs, a search, `stats` and `papers` (the first open
    of a home is where Chroma creates its tables; CI saw two ingests collide there)."""
    row = Row("new home: two ingests, a search, stats, papers at once")
    for attempt in range(rounds):
        home = root / f"rush-{attempt}"
        x, y = write_overlapping(root / f"rush-files-{attempt}", "r")
        commands = [("ingest", str(x)), ("ingest", str(y)), ("search", "shared study"), ("stats",), ("papers",)]
        runs = [finish(p) for p in [start_cli(home, *command) for command in commands]]
        papers = {p.doi: len(p.sources) for p in Assistant(home=home).papers()}
        whole = len(papers) == 9 and all(papers[f"10.5555/r.{i}"] == 2 for i in range(3, 6)) and consistent(home)
        failed = [f"{c[0]}: {(r.err.strip().splitlines() or ['?'])[-1]}" for c, r in zip(commands, runs) if r.code != 0]
        if failed:
            print(f"  new home rush {attempt}: " + "; ".join(failed))
        row.add(not failed, any(r.traceback for r in runs), any(r.hung for r in runs), not whole)
    return row


def search_during_ingest(root: Path) -> Row:
    """Searches in another process while the CLI ingests 70 papers: each must see the old or the new library."""
    row = Row("search loop in another process during an ingest")
    home = copy_of(root, "search-during")
    script = (
        "import sys, json; from assistant import Assistant\n"
        "lib = Assistant(home=sys.argv[1])\n"
        "while True:\n"
        "    with lib.store.reading():\n"
        "        ids = sorted(h.paper_id for h in lib.search('learning', k=500, mode='dense'))\n"
        "        indexed = lib.store.catalog.connection().execute('SELECT count(*) FROM lexical_docs').fetchone()[0]\n"
        "    print(json.dumps([len(ids), indexed]), flush=True)\n"
    )
    searcher = subprocess.Popen([sys.executable, "-c", script, str(home)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    run = cli(home, "ingest", str(SEEDS / "daily-papers-oct-31.txt"))
    time.sleep(8)
    searcher.send_signal(signal.SIGKILL)
    out, err = searcher.communicate()
    views = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
    mixed = [v for v in views if v[0] != v[1] or v[0] not in (16, 86)]
    row.add(run.code == 0 and bool(views) and views[-1] == [86, 86], run.traceback or "Traceback" in err, run.hung,
            bool(mixed) or not consistent(home))
    print(
        f"  search during ingest: {len(views)} searches, {len(mixed)} mixed views, last {views[-1] if views else None}"
    )
    return row


def damaged_derived(root: Path) -> Row:
    row = Row("damaged derived files (cluster map, summaries)")
    for how in ("garbled", "truncated", "empty"):
        for target in ("clusters/map.json", "clusters/summaries"):
            home = copy_of(root, f"derived-{how}-{target.replace('/', '-')}")
            cli(home, "summarize", "--out", str(home / "report"))  # creates the cluster files
            before = snapshot(home)
            path = home / target
            for file in sorted(path.iterdir()) if path.is_dir() else [path]:
                DAMAGE[how](file)
            runs = [cli(home, "search", "graph partitioning"), cli(home, "clusters"),
                    cli(home, "ingest", str(SEEDS / "guo-zhenyu-author-page.txt"))]
            now = snapshot(home)
            row.add(all(r.code == 0 for r in runs), any(r.traceback for r in runs), any(r.hung for r in runs),
                    any(now.get(pid, (None,))[0] != key for pid, (key, _) in before.items()) or not consistent(home))
    return row


def damaged_store(root: Path) -> list[Row]:
    """The catalog (library.sqlite3) and the vector index (chroma/) damaged five ways each. Wanted: one line naming
    the damaged file and the right remedy — for the catalog, restore or re-ingest (`litassist sources` still lists
    the files); for the vectors, `litassist reindex` (the papers are safe) — and never a traceback."""
    rows = []
    for target, remedy in (("library.sqlite3", "litassist sources"), ("chroma/chroma.sqlite3", "litassist reindex")):
        row = Row(f"damaged {target} (truncated, header, emptied, pages, deleted)")
        cases: list[tuple[str, Callable[[Path], None]]] = [
            *((how, lambda home, how=how, target=target: DAMAGE[how](home / target))
              for how in ("truncated", "header", "empty", "middle")),
            ("deleted", lambda home, target=target: (home / target).unlink()),
        ]
        if target.startswith("chroma"):
            cases.append(("index files garbled", lambda home: [garble(f) for f in (home / "chroma").glob("*/*.bin")]))
        for name, hurt in cases:
            home = copy_of(root, f"store-{target.replace('/', '-')}-{name.replace(' ', '-')}")
            hurt(home)
            search = cli(home, "search", "graph partitioning")
            sources = cli(home, "sources")
            errors = search.lines("error:")
            clear = search.code == 0 or (search.code == 1 and len(errors) == 1 and remedy in errors[0])
            listed = sources.code == 0 and len(sources.out.splitlines()) == 2
            row.add(clear and listed, search.traceback or sources.traceback, search.hung or sources.hung, not listed)
            print(f"  {target} {name}: search exit {search.code}: {(errors or [search.out[:80]])[0][:160]}")
        rows.append(row)
    return rows


def killed_removals(root: Path, kills: int) -> Row:
    """SIGKILL `remove --source` at a random moment: the removal is all or nothing (it published half of one)."""
    row = Row("SIGKILL during remove (random moment), then search")
    rng = random.Random(18)
    for attempt in range(kills):
        home = copy_of(root, f"killed-remove-{attempt}")
        proc = start_cli(home, "remove", "--source", str(root / "baseline-corpus" / SMALL[0]))
        time.sleep(rng.uniform(0.2, 4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        search = cli(home, "search", "learning", "--json")
        papers = len(Assistant(home=home).papers())
        row.add(search.code == 0, search.traceback, search.hung, papers not in (16, 6) or not consistent(home))
    return row


def occupied_paths(root: Path) -> Row:
    """litassist's own files replaced by something else: lock files by folders, the cluster cache by a file."""
    row = Row("litassist's paths occupied (lock files as folders, clusters as a file)")
    for name in ("write.lock", "open.lock", "clusters"):
        home = copy_of(root, f"occupied-{name}")
        before = snapshot(home)
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
            path.write_text("in the way")
        else:
            path.unlink(missing_ok=True)
            path.mkdir()
        runs = [cli(home, "ingest", str(SEEDS / "guo-zhenyu-author-page.txt")), cli(home, "clusters")]
        errors = [line for r in runs for line in r.lines("error:")]
        clear = all(r.code == 0 or len(r.lines("error:")) == 1 for r in runs) and all(name in e for e in errors)
        if path.is_dir():  # what the line told the user to do, then nothing stored may be missing
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        now = snapshot(home)
        lost = any(now.get(pid, (None,))[0] != key for pid, (key, _) in before.items())
        row.add(clear, any(r.traceback for r in runs), any(r.hung for r in runs), lost)
    return row


def full_disk(root: Path) -> Row:
    """The disk fills during an ingest (a file-size limit stands in for it): one line saying so, nothing lost."""
    import resource

    row = Row("disk full during ingest (file size limit)")
    home = copy_of(root, "full-disk")
    before = snapshot(home)
    big = root / "big.jsonl"
    big.write_text("".join(json.dumps({"id": f"big{i}", "abstract": abstract(f"filling {i}") * 20}) + "\n"
                           for i in range(400)), encoding="utf-8")
    limit = max(p.stat().st_size for p in home.rglob("*") if p.is_file()) + 256 * 1024

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.Popen([sys.executable, "-c", "from assistant.cli import run; run()", "--home", str(home),
                             "ingest", str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=cap)  # noqa: PLW1509 - this process starts no threads before it
    run = finish(proc)
    errors = run.lines("error:")
    said = len(errors) == 1 and "full" in errors[0] or run.code == 0
    now = snapshot(home)
    row.add(said, run.traceback, run.hung, any(now.get(pid, (None,))[0] != key for pid, (key, _) in before.items()))
    print(f"  full disk: exit {run.code}: {(errors or [run.err[-160:]])[0][:200]}")
    return row


def colliding_ids(root: Path) -> Row:
    """Two BEIR-style files that both number from 1: never merged (paper 1 kept A's title with B's abstract)."""
    row = Row("ids colliding across files, then remove one file")
    home = root / "colliding"
    files = []
    texts = {"a.jsonl": "Vitamin D supplementation lowered fracture rates among elderly women, cohort {i}.",
             "b.jsonl": "Aerobic training improved memory recall of sedentary adults in trial group {i}."}
    for name, text in texts.items():
        path = root / name
        path.write_text("".join(json.dumps({"_id": str(i), "title": f"{name} study {i}", "text": text.format(i=i)})
                                + "\n" for i in range(1, 6)), encoding="utf-8")
        files.append(path)
    runs = [cli(home, "ingest", str(files[0])), cli(home, "ingest", str(files[1])),
            cli(home, "remove", "--source", str(files[1]))]
    papers = Assistant(home=home).papers()
    whole = len(papers) == 5 and all(p.abstract == texts["a.jsonl"].format(i=p.paper_id) for p in papers)
    row.add(all(r.code == 0 for r in runs), any(r.traceback for r in runs), any(r.hung for r in runs), not whole)
    return row


def damaged_backup(root: Path) -> Row:
    """`backup` of a home whose catalog has damaged pages: refused with one line, no backup left behind."""
    row = Row("backup of a damaged catalog")
    home = copy_of(root, "backup-damaged")
    DAMAGE["middle"](home / "library.sqlite3")
    run = cli(home, "backup", str(root / "the-backup"))
    errors = run.lines("error:")
    row.add(
        run.code != 0 and len(errors) == 1 and "library.sqlite3" in errors[0] and not (root / "the-backup").exists(),
        run.traceback,
        run.hung,
    )
    return row


def waiting_writer(root: Path) -> Row:
    row = Row("second writer while another holds the library (timeout 2 s)")
    home = copy_of(root, "waiting")
    lib = Assistant(home=home)
    source = root / "waiting.jsonl"
    source.write_text(json.dumps({"id": "w", "abstract": abstract("waiting")}) + "\n", encoding="utf-8")
    with lib.store.locks.writer():
        run = cli(home, "ingest", str(source), LITASSIST_LOCK_TIMEOUT="2")
    errors = run.lines("error:")
    row.add(run.code == 1 and len(errors) == 1 and "did not finish within 2 s" in errors[0], run.traceback, run.hung)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8, help="SIGKILLs during ingest")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="litassist-attacks-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: list[Row] = []
    try:
        steps = [lambda: bad_files(root), lambda: [truncated_updates(root)], lambda: [damaged_derived(root)],
                 lambda: damaged_store(root), lambda: [waiting_writer(root)], lambda: [concurrent_writers(root)],
                 lambda: [killed_removals(root, args.kills)], lambda: [occupied_paths(root)],
                 lambda: [full_disk(root)], lambda: [colliding_ids(root)], lambda: [damaged_backup(root)],
                 lambda: [new_home_rush(root)], lambda: [search_during_ingest(root)],
                 lambda: [killed_ingests(root, args.kills)]]
        for step in steps:
            for row in step():
                rows.append(row)
                print(f"  {row.attack}: {row.tries} tries, {row.handled} handled", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    width = max(len(r.attack) for r in rows)
    print(f"\n{'attack':<{width}}  tries  handled  tracebacks  hangs  data lost")
    for r in rows:
        print(f"{r.attack:<{width}}  {r.tries:>5}  {r.handled:>7}  {r.tracebacks:>10}  {r.hangs:>5}  {r.lost:>9}")
    total = Row(
        "total", *(sum(getattr(r, f) for r in rows) for f in ("tries", "handled", "tracebacks", "hangs", "lost"))
    )
    print(f"{total.attack:<{width}}  {total.tries:>5}  {total.handled:>7}  {total.tracebacks:>10}  {total.hangs:>5}  "
          f"{total.lost:>9}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
