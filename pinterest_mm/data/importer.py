"""Import a manifest into the store: validate, clean as the thesis does, draw, split.

Nothing is written until every step has succeeded; the store write is one transaction,
so an import killed at any point leaves the store as it was. Every step is announced on a
progress bar (and the long per-pin ones count pins), so a large manifest is never silent.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from ..config import ImportConfig
from ..store import Store, validate_name
from .clean import ImageCheck, duplicate_keepers, inspect_image
from .manifest import Manifest, read_manifest
from .pin_steps import CHUNK, clean_texts, dataset_fingerprint, release_memory, sort_order
from .printable import quoted
from .scripts import script_mix
from .split import MIN_PINS_FOR_SPLIT, draw_per_class, stratified_split


class ImportFailed(ValueError):
    """The import cannot produce a usable dataset; the message says which step and option."""


# Step name -> (why pins are dropped, the option that controls it).
STEPS = {
    "category names": ("nothing dropped: category names normalized, case variants", "--merge-case-variants"),
    "excluded category": ("category empty or in the excluded list (thesis: none, other)", None),
    "invalid text": ("description empty or not valid UTF-8", None),
    "too few words": ("fewer than min_words words after cleaning", "--min-words"),
    "bad image": ("image missing, unreadable, corrupt, not an image or too large", "--images-root"),
    "duplicate image": ("same grayscale image as a pin kept in a smaller category", None),
    "small class": ("category with fewer than min_per_class pins", "--min-per-class"),
    "class draw": ("more than max_per_class pins in the category (seeded draw)", "--max-per-class"),
}


@dataclass
class ImportResult:
    """What an import did.

    Attributes:
        name: Dataset name.
        n_pins: Pins kept.
        classes: Class names.
        n_users: Users with at least one kept pin.
        split_counts: Pins per split.
        report: Per step and category: dropped and remaining pins.
    """

    name: str
    n_pins: int
    classes: list[str]
    n_users: int
    split_counts: dict[str, int]
    report: pd.DataFrame


class _Tracker:
    """Keeps the live pins and records, for each step, what it dropped per category.

    Each pin's fate is kept by its row in the manifest's pin table: ``status`` has shape
    (n,) ("kept" or why dropped; one shared object per reason, 8 bytes a pin), and the live
    frame carries that row as ``pin_row``. Masks are positional over the live pins.
    """

    def __init__(self, pins: pd.DataFrame) -> None:
        pins["pin_row"] = np.arange(len(pins), dtype=np.int32)
        self.pins = pins
        self.status = np.full(len(pins), "kept", dtype=object)
        self.rows: list[dict] = []
        self._record("manifest", np.zeros(len(pins), dtype=bool), "pins read")

    def drop(self, step: str, mask, reasons: np.ndarray | None = None) -> None:
        """Drop the live pins where ``mask`` (shape (n_live,)) is true, recording ``step``;
        ``reasons`` (shape (n_live,), read where ``mask`` is true) says why, per pin."""
        mask = np.asarray(mask, dtype=bool)
        dropped = self.pins["pin_row"].to_numpy()[mask]
        if reasons is None:
            self.status[dropped] = step
        else:
            self.status[dropped] = [f"{step}: {r}" for r in np.asarray(reasons, dtype=object)[mask]]
        self._record(step, mask, STEPS[step][0])
        if mask.any():  # dropping nothing needs no copy of the frame
            self.pins = self.pins.loc[~mask].reset_index(drop=True)
        if self.pins.empty:
            option = STEPS[step][1]
            hint = f" Change {option} to keep more." if option else ""
            raise ImportFailed(
                f"The step '{step}' removed every remaining pin ({STEPS[step][0]}).{hint} "
                f"Import report so far:\n{self.report_text()}"
            )

    def note(self, step: str, reason: str) -> None:
        """Record a step that drops nothing, with ``reason`` saying what it found."""
        self._record(step, np.zeros(len(self.pins), dtype=bool), reason)

    def _record(self, step: str, mask: np.ndarray, reason: str) -> None:
        cats = self.pins["category"]
        dropped = cats[mask].value_counts()
        remaining = cats[~mask].value_counts()
        step_idx = len({r["step"] for r in self.rows})
        for cat in sorted(cats.unique().tolist()):
            self.rows.append(
                dict(
                    step_idx=step_idx,
                    step=step,
                    category=cat,
                    dropped=int(dropped.get(cat, 0)),
                    remaining=int(remaining.get(cat, 0)),
                    reason=reason,
                )
            )

    def report(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def report_text(self) -> str:
        return format_report(self.report())


def format_report(report: pd.DataFrame) -> str:
    """Return the import report as a text table: one line per step, totals over categories."""
    if report.empty:
        return "(empty report)"
    from ..textable import text_table

    totals = report.groupby(["step_idx", "step"], sort=True)[["dropped", "remaining"]].sum()
    reasons = report.drop_duplicates("step").set_index("step")["reason"]
    rows = [[step, int(row.dropped), int(row.remaining), reasons[step]] for (_, step), row in totals.iterrows()]
    return text_table(["step", "dropped", "remaining", "why"], rows, rule=False)


# The steps announced on the progress bar, in order.
PHASES = ("reading manifest", "cleaning text", "checking images", "duplicate images",
          "classes and splits", "writing the store")


def _phases(progress: bool) -> tqdm:
    """A progress bar over :data:`PHASES` (on stderr); :func:`_announce` moves it on."""
    return tqdm(total=len(PHASES), desc="import", unit="step", disable=not progress,
                bar_format="{desc}step {n_fmt}/{total_fmt} [{elapsed}]")


def _announce(bar: tqdm, phase: str) -> None:
    """Show ``phase`` (one of :data:`PHASES`) as the running step; release freed memory."""
    bar.n = PHASES.index(phase) + 1
    bar.set_description(f"import: {phase}", refresh=True)
    release_memory()  # what the last step freed goes back to the system before the next


# (unique image paths, max_pixels, max_bytes, progress) -> one check per path, in order
ImageChecker = Callable[[list[str], int, int, bool], list[ImageCheck]]


def _inspect_in_threads(paths: Iterable[str], max_pixels: int, max_bytes: int) -> Iterator[ImageCheck]:
    """Inspect and hash each path in a pool of threads, yielding the checks in order.

    At most a few images per thread are in flight (never one future per image of a large
    manifest). Closing the generator (Ctrl-C in the consumer) cancels the images not started
    yet; none of the running ones can block (:func:`~.clean.read_image_bytes` never waits on
    a pipe or device).
    """
    workers = max(4, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=workers)
    pending: deque = deque()
    try:
        for path in paths:
            pending.append(pool.submit(inspect_image, Path(path), max_pixels, max_bytes))
            if len(pending) >= 8 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_images_locally(unique: list[str], max_pixels: int, max_bytes: int, progress: bool) -> list[ImageCheck]:
    """Inspect and hash each path in a pool of threads (decoding releases the GIL).

    Ctrl-C cancels the images not started yet. The bar shows the rate and the time left.
    """
    it = _inspect_in_threads(unique, max_pixels, max_bytes)
    return list(tqdm(it, total=len(unique), desc="checking images", unit="img", disable=not progress))


@dataclass
class _Checks:
    """What the image checks found, per pin, shape (n,) each: ``ok`` (bool), ``dhash`` and
    ``sha1`` (text columns), ``reason`` (object, set where not ok)."""

    ok: np.ndarray
    dhash: pd.Series
    sha1: pd.Series
    reason: np.ndarray


def _check_images(paths: pd.Series, max_pixels: int, max_bytes: int, progress: bool,
                  checker: ImageChecker | None = None) -> _Checks:
    """Inspect each distinct path once (pins often share an image file).

    Locally (``checker`` None) the checks stream through :func:`_inspect_in_threads` and are
    packed into arrays :data:`CHUNK` images at a time: no Python object per image outlives
    its chunk. Another ``checker`` (``pinterest-mm import --engine ray`` passes
    :func:`pinterest_mm.engines.ray_import.ray_image_checker`) gets every distinct path in
    one call. The result is the same either way.

    Args:
        paths: Resolved image paths, shape (n,).
    """
    codes, uniques = pd.factorize(paths)
    if checker is not None:
        stream: Iterable[ImageCheck] = checker(uniques.tolist(), max_pixels, max_bytes, progress)
    else:
        stream = tqdm(_inspect_in_threads((p for k in range(0, len(uniques), CHUNK)
                                           for p in uniques[k : k + CHUNK].tolist()), max_pixels, max_bytes),
                      total=len(uniques), desc="checking images", unit="img", disable=not progress)
    ok = np.zeros(len(uniques), dtype=bool)
    reasons: dict[int, str] = {}
    dhash, sha1, batch = [], [], []

    def pack() -> None:
        start = sum(len(d) for d in dhash)
        ok[start : start + len(batch)] = [c.ok for c in batch]
        reasons.update((start + i, c.reason) for i, c in enumerate(batch) if not c.ok)
        dhash.append(pa.array([c.dhash for c in batch], pa.large_string()))
        sha1.append(pa.array([c.sha1 for c in batch], pa.large_string()))
        batch.clear()

    for check in stream:
        batch.append(check)
        if len(batch) == CHUNK:
            pack()
    if batch or not dhash:
        pack()
    take = pa.array(codes, pa.int64())
    reason = np.empty(len(codes), dtype=object)
    bad = np.flatnonzero(~ok[codes])
    reason[bad] = [reasons[c] for c in codes[bad].tolist()]
    return _Checks(ok[codes], _column(dhash, take, paths.index), _column(sha1, take, paths.index), reason)


def _column(parts: list, take: pa.Array, index: pd.Index) -> pd.Series:
    """The text column ``parts`` (Arrow arrays, concatenated) at rows ``take``, on ``index``."""
    return pa.chunked_array(parts, pa.large_string()).take(take).to_pandas().set_axis(index)


def _category_note(m: Manifest) -> str | None:
    """What normalizing the category names found, for the report (None: nothing)."""
    parts = []
    if m.n_nfc_categories:
        parts.append(f"{m.n_nfc_categories} name(s) normalized to Unicode NFC")
    if m.case_variants:
        shown = "; ".join(" / ".join(quoted(n, 30) for n in g) for g in m.case_variants[:3])
        more = f" and {len(m.case_variants) - 3} more" if len(m.case_variants) > 3 else ""
        if m.merged_case_variants:
            parts.append(f"case variants merged into the first: {shown}{more}")
        else:
            parts.append(f"WARNING: names differ only in case, kept apart: {shown}{more} "
                         "(--merge-case-variants merges them)")
    return "; ".join(parts) or None


def import_manifest(
    store: Store,
    manifest: Path | str,
    name: str,
    config: ImportConfig = ImportConfig(),
    *,
    images_root: Path | str | None = None,
    replace: bool = False,
    progress: bool = True,
    image_checker: ImageChecker | None = None,
) -> ImportResult:
    """Import a manifest as dataset ``name``.

    Args:
        store: Where to write.
        manifest: CSV or Parquet manifest (see :mod:`pinterest_mm.data.manifest`).
        name: Dataset name.
        config: Cleaning and split settings.
        images_root: Folder image paths are relative to (default: the manifest's folder).
        replace: Replace an existing dataset of that name.
        progress: Show progress bars.
        image_checker: Where the image checks and hashing run (default: local threads,
            :func:`check_images_locally`); the result is the same either way.

    Returns:
        An :class:`ImportResult`.

    Raises:
        ManifestError: The manifest is malformed.
        ImportFailed: Cleaning left nothing, or a class is too small to split.
        StoreError: The name exists and ``replace`` is false.
        DatasetBusy: A build of that dataset runs (checked first, so no work is lost).
    """
    validate_name(name)
    with store.lock_dataset(name, "an import"):  # no build of this name starts or runs meanwhile
        return _import_locked(store, manifest, name, config, images_root, replace, progress, image_checker)


def _import_locked(store: Store, manifest: Path | str, name: str, config: ImportConfig,
                   images_root: Path | str | None, replace: bool, progress: bool,
                   checker: ImageChecker | None) -> ImportResult:
    if not replace and name in store.dataset_names():
        from ..store import StoreError

        raise StoreError(f"A dataset named {name!r} exists already. Pass --replace to replace it.")
    phases = _phases(progress)
    try:
        return _import(store, manifest, name, config, images_root, replace, progress, phases, checker)
    finally:
        phases.close()


def _import(store: Store, manifest: Path | str, name: str, config: ImportConfig,
            images_root: Path | str | None, replace: bool, progress: bool, phases: tqdm,
            checker: ImageChecker | None = None) -> ImportResult:
    """The steps of :func:`import_manifest`, each announced on ``phases``."""
    cc, sc = config.cleaning, config.split
    _announce(phases, "reading manifest")
    m = read_manifest(manifest, images_root, merge_case_variants=cc.merge_case_variants, progress=progress)
    note, images_root, saves, pins = _category_note(m), m.images_root, m.saves, m.pins
    del m  # the manifest's pin table lives on only as the tracker's live pins
    categories = pins["category"]  # every pin's category, for the manifest rows
    track = _Tracker(pins)
    del pins
    if note is not None:
        track.note("category names", note)

    excluded = {c.lower() for c in cc.drop_categories}
    p = track.pins
    track.drop("excluded category", (p["category"] == "") | p["category"].str.lower().isin(excluded))

    p = track.pins
    track.drop("invalid text", (p["description"].str.strip() == "") | ~p["utf8_ok"])

    _announce(phases, "cleaning text")
    p = track.pins
    p["text_words"], p["n_words"], p["text_transformer"] = clean_texts(p["description"], cc, progress)
    track.note("text scripts", script_mix(p["description"]))
    track.drop("too few words", p["n_words"] < cc.min_words)

    _announce(phases, "checking images")
    p = track.pins
    checks = _check_images(p["path"], cc.max_image_pixels, cc.max_image_bytes, progress, checker)
    p["image_hash"], p["sha1"] = checks.dhash, checks.sha1
    track.drop("bad image", ~checks.ok, checks.reason)
    del checks

    _announce(phases, "duplicate images")
    p = track.pins
    if cc.dedupe_images:
        sizes = p["category"].map(p["category"].value_counts()).to_numpy()
        keepers = duplicate_keepers(p["image_hash"], sizes, p["pin_id"], cc.hash_distance)
        drop = keepers != np.arange(len(p))
        reasons = np.empty(len(p), dtype=object)
        reasons[drop] = ["duplicate of pin " + k for k in p["pin_id"].iloc[keepers[drop]].tolist()]
        track.drop("duplicate image", drop, reasons)
        del keepers, drop, reasons

    _announce(phases, "classes and splits")
    p = track.pins
    counts = p["category"].value_counts()
    small = counts[counts < cc.min_per_class].index
    track.drop("small class", p["category"].isin(small))

    p = track.pins
    # class codes in sorted name order: the draw visits the classes as it does on the names
    keep = draw_per_class(pd.factorize(p["category"], sort=True)[0], cc.max_per_class, sc.seed)
    drawn_out = np.ones(len(p), dtype=bool)
    drawn_out[keep] = False
    track.drop("class draw", drawn_out)

    p = track.pins.drop(columns=["image", "utf8_ok"]).rename(columns={"path": "image"})
    p = p.take(sort_order(p, ["category", "pin_id"])).reset_index(drop=True)
    classes = sorted(p["category"].unique().tolist())
    p["label"] = p["category"].map({c: i for i, c in enumerate(classes)}).astype(int)
    counts = p["category"].value_counts()
    too_small = counts[counts < MIN_PINS_FOR_SPLIT]
    if len(too_small):
        raise ImportFailed(
            f"Categories {', '.join(quoted(c, 40) for c in too_small.index[:5])} have fewer than "
            f"{MIN_PINS_FOR_SPLIT} pins, too few for a stratified train/validation/test split. "
            f"Raise --min-per-class to at least {MIN_PINS_FOR_SPLIT} to drop them."
        )
    p["split"] = stratified_split(p["label"].to_numpy(), sc.test_size, sc.val_size, sc.seed)
    p["row"] = np.arange(len(p))
    p["split_row"] = p.groupby("split").cumcount()

    rows = saves["pin_row"].to_numpy()
    manifest_rows = pd.DataFrame({
        "pin_id": saves["pin_id"], "user_id": saves["user_id"], "board": saves["board"],
        "category": categories.iloc[rows].set_axis(saves.index),
        "status": pd.Series(track.status[rows], index=saves.index, dtype=str),
    })
    del saves, categories, rows
    kept_users = manifest_rows.loc[(manifest_rows["status"] == "kept") & (manifest_rows["user_id"] != ""), "user_id"]
    n_users = int(kept_users.nunique())
    del kept_users
    split_counts = {s: int((p["split"] == s).sum()) for s in ("train", "val", "test")}
    fingerprint = dataset_fingerprint(config.to_dict(), p)
    report = track.report()
    _announce(phases, "writing the store")
    store.write_dataset(
        name,
        info=dict(
            manifest=str(Path(manifest).resolve()),
            images_root=str(images_root),
            config=config.to_dict(),
            fingerprint=fingerprint,
            n_users=n_users,
            split_counts=split_counts,
        ),
        classes=classes,
        pins=p,
        manifest_rows=manifest_rows,
        report=report,
        replace=replace,
    )
    return ImportResult(name, len(p), classes, n_users, split_counts, report)
