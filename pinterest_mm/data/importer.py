"""Import a manifest into the store: validate, clean as the thesis does, draw, split.

Nothing is written until every step has succeeded; the store write is one transaction,
so an import killed at any point leaves the store as it was. Every step is announced on a
progress bar (and the long per-pin ones count pins), so a large manifest is never silent.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..config import ImportConfig
from ..store import Store, validate_name
from .clean import ImageCheck, clean_transformer_text, clean_words, duplicate_keepers, inspect_image
from .manifest import Manifest, read_manifest
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
    """Keeps the live pins and records, for each step, what it dropped per category."""

    def __init__(self, pins: pd.DataFrame) -> None:
        self.pins = pins
        self.status = pd.Series("kept", index=pins["pin_id"].to_numpy())
        self.rows: list[dict] = []
        self._record("manifest", pd.Series(False, index=pins.index), "pins read")

    def drop(self, step: str, mask: pd.Series, reasons: pd.Series | str | None = None) -> None:
        """Drop the live pins where ``mask`` is true, recording ``step``."""
        mask = mask.reindex(self.pins.index, fill_value=False).astype(bool)
        dropped = self.pins.loc[mask, "pin_id"].to_numpy()
        if isinstance(reasons, pd.Series):
            self.status.loc[dropped] = (step + ": " + reasons[mask].astype(str)).to_numpy()
        else:
            self.status.loc[dropped] = step
        self._record(step, mask, STEPS[step][0])
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
        self._record(step, pd.Series(False, index=self.pins.index), reason)

    def _record(self, step: str, mask: pd.Series, reason: str) -> None:
        cats = self.pins["category"]
        dropped = cats[mask].value_counts()
        remaining = cats[~mask].value_counts()
        step_idx = len({r["step"] for r in self.rows})
        for cat in sorted(set(cats)):
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
    """Show ``phase`` (one of :data:`PHASES`) as the running step."""
    bar.n = PHASES.index(phase) + 1
    bar.set_description(f"import: {phase}", refresh=True)


# (unique image paths, max_pixels, max_bytes, progress) -> one check per path, in order
ImageChecker = Callable[[list[str], int, int, bool], list[ImageCheck]]


def check_images_locally(unique: list[str], max_pixels: int, max_bytes: int, progress: bool) -> list[ImageCheck]:
    """Inspect and hash each path in a pool of threads (decoding releases the GIL).

    Ctrl-C cancels the images not started yet; none of the running ones can block
    (:func:`~.clean.read_image_bytes` never waits on a pipe or device). The bar shows the
    rate and the time left.
    """
    pool = ThreadPoolExecutor(max_workers=max(4, os.cpu_count() or 1))
    try:
        it = pool.map(lambda p: inspect_image(Path(p), max_pixels, max_bytes), unique)
        return list(tqdm(it, total=len(unique), desc="checking images", unit="img", disable=not progress))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_images(paths: list[str], max_pixels: int, max_bytes: int, progress: bool,
                  checker: ImageChecker | None = None) -> list[ImageCheck]:
    """Inspect each distinct path once (pins often share an image file) with ``checker``
    (default :func:`check_images_locally`; ``pinterest-mm import --engine ray`` passes
    :func:`pinterest_mm.engines.ray_import.ray_image_checker`)."""
    unique = list(dict.fromkeys(paths))
    checks = (checker or check_images_locally)(unique, max_pixels, max_bytes, progress)
    by_path = dict(zip(unique, checks))
    return [by_path[p] for p in paths]


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
    pins = m.pins.copy()
    track = _Tracker(pins)
    if (note := _category_note(m)) is not None:
        track.note("category names", note)

    excluded = {c.lower() for c in cc.drop_categories}
    track.drop("excluded category", (pins["category"] == "") | pins["category"].str.lower().isin(excluded))

    p = track.pins
    track.drop("invalid text", (p["description"].str.strip() == "") | ~p["utf8_ok"])

    _announce(phases, "cleaning text")
    p = track.pins
    texts = tqdm(p["description"], desc="cleaning text", unit="pin", disable=not progress, leave=False)
    words = [clean_words(d, cc.min_token_len, cc.max_token_len) for d in texts]
    p["text_words"] = [" ".join(w) for w in words]
    p["n_words"] = [len(w) for w in words]
    p["text_transformer"] = [clean_transformer_text(d) for d in p["description"]]
    track.note("text scripts", script_mix(p["description"]))
    track.drop("too few words", p["n_words"] < cc.min_words)

    _announce(phases, "checking images")
    p = track.pins
    checks = _check_images(p["path"].tolist(), cc.max_image_pixels, cc.max_image_bytes, progress, checker)
    p["image_hash"] = [c.dhash for c in checks]
    p["sha1"] = [c.sha1 for c in checks]
    track.drop("bad image", pd.Series([not c.ok for c in checks]), pd.Series([c.reason for c in checks]))

    _announce(phases, "duplicate images")
    p = track.pins
    if cc.dedupe_images:
        sizes = p["category"].map(p["category"].value_counts()).to_numpy()
        pin_ids = p["pin_id"].to_numpy(dtype=object)
        keepers = duplicate_keepers(p["image_hash"].tolist(), sizes, pin_ids, cc.hash_distance)
        drop = pd.Series(keepers != np.arange(len(p)), index=p.index)
        reasons = pd.Series("duplicate of pin " + pd.Series(pin_ids[keepers], dtype=object), index=p.index)
        track.drop("duplicate image", drop, reasons)

    _announce(phases, "classes and splits")
    p = track.pins
    counts = p["category"].value_counts()
    small = counts[counts < cc.min_per_class].index
    track.drop("small class", p["category"].isin(small))

    p = track.pins
    keep = draw_per_class(p["category"].to_numpy(), cc.max_per_class, sc.seed)
    track.drop("class draw", ~pd.Series(np.isin(np.arange(len(p)), keep)))

    p = track.pins.sort_values(["category", "pin_id"]).reset_index(drop=True)
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
    p["image"] = p["path"]

    saves = m.saves.merge(m.pins[["pin_id", "category"]], on="pin_id", how="left")
    saves["status"] = saves["pin_id"].map(track.status).fillna("kept")
    kept_users = saves.loc[(saves["status"] == "kept") & (saves["user_id"] != ""), "user_id"]
    split_counts = {s: int((p["split"] == s).sum()) for s in ("train", "val", "test")}
    fingerprint = hashlib.sha256(
        json.dumps(
            [config.to_dict(), p[["pin_id", "category", "description", "sha1", "split"]].values.tolist()],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    report = track.report()
    _announce(phases, "writing the store")
    store.write_dataset(
        name,
        info=dict(
            manifest=str(Path(manifest).resolve()),
            images_root=str(m.images_root),
            config=config.to_dict(),
            fingerprint=fingerprint,
            n_users=int(kept_users.nunique()),
            split_counts=split_counts,
        ),
        classes=classes,
        pins=p,
        manifest_rows=saves[["pin_id", "user_id", "board", "category", "status"]],
        report=report,
        replace=replace,
    )
    return ImportResult(name, len(p), classes, int(kept_users.nunique()), split_counts, report)
