"""Link the SkyBiz and SmartAcc records of one business: blocking, scoring, classing (pure; no warehouse).

Comparing every SkyBiz record with every SmartAcc record is quadratic (10¹² pairs at a million per side),
so records are first *blocked*: only pairs sharing at least one exact key — a phone number, an e-mail, a
registration number, or the name with the postcode — are compared. The join runs in an in-memory DuckDB on
the key columns. A key shared by more records on a side than its cap in :data:`BLOCK_CAPS` (a chain's
head-office phone, a group's ``info@``) identifies nobody and is dropped from blocking, so every record
meets a bounded number of candidates and the cost stays near-linear.

Each candidate pair gets evidence (which keys agree, and how similar the names are by rapidfuzz's
``token_sort_ratio`` on the name keys) and one class:

* ``same``: the same business; the push treats the SmartAcc record as existing in SkyBiz.
* ``possible``: evidence that disagrees with itself (a shared phone under another name; the same name and
  e-mail while both records carry phone numbers and none agrees; the same name at the same postcode with no
  contact detail in common, unless both their phones and their e-mails differ). A person decides; the
  push creates nothing.
* ``different``: the pair shared a blocking key, nothing more — including an e-mail shared under another
  name by businesses whose phone numbers differ (group companies share ``info@``; free-mail addresses like
  ``ahmad.ismail@gmail.com`` are shared by namesakes).

A name missing on one side (a quarantined blank name) is no evidence either way: two agreeing identifiers,
or one and the postcode, then decide.

:func:`classify` is the one place the thresholds live.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

from pipelines.identity import keys

SAME: Final = "same"
POSSIBLE: Final = "possible"
DIFFERENT: Final = "different"
CLASSES: Final = (SAME, POSSIBLE, DIFFERENT)

# Records per side a blocking key may hold and still block (more: it names a group, not a business).
BLOCK_CAPS: Final = {"phone": 20, "email": 10, "registration": 5, "name_postcode": 20}
# Name similarity (0..1, token_sort_ratio of the name keys) needed next to one agreeing identifier.
SAME_NAME_ONE_ID: Final = 0.85
# ... next to two agreeing identifiers, or a registration number (an identifier made for this).
SAME_NAME_STRONG_ID: Final = 0.6
# The same name at the same postcode with no contact detail in common: worth a person's look.
POSSIBLE_NAME_SAME_POSTCODE: Final = 0.9

PHONE_COLUMNS: Final = ("phone_1", "phone_2", "phone_3")
RECORD_COLUMNS: Final = ("name", *PHONE_COLUMNS, "email", "postcode", "town", "registration_no")
"""What each side hands to :func:`match`: raw or normalized text, either works (see :mod:`.keys`)."""

EVIDENCE_COLUMNS: Final = (
    "name_score",
    "phone_match",
    "phones_differ",
    "emails_differ",
    "email_match",
    "registration_match",
    "postcode_match",
    "town_match",
)


@dataclass(frozen=True, slots=True)
class Features:
    """One side's match keys, row for row with the records given."""

    frame: pd.DataFrame

    @classmethod
    def of(cls, records: pd.DataFrame) -> Features:
        """Keys of ``records`` (columns :data:`RECORD_COLUMNS`; a missing column counts as empty)."""
        empty = pd.Series([None] * len(records), index=records.index, dtype="string")

        def col(name: str) -> pd.Series:
            return records[name] if name in records.columns else empty

        frame = pd.DataFrame(
            {
                "name_key": keys.name_key(col("name")),
                **{p: keys.phone_key(col(p)) for p in PHONE_COLUMNS},
                "email_key": keys.email_key(col("email")),
                "postcode_key": keys.postcode_key(col("postcode")),
                "town_key": keys.town_key(col("town")),
                "registration_key": keys.registration_key(col("registration_no")),
            }
        ).reset_index(drop=True)
        return cls(frame)


def match(skybiz: pd.DataFrame, smartacc: pd.DataFrame, *, workers: int = 1) -> pd.DataFrame:
    """Every candidate pair of ``skybiz`` × ``smartacc`` records with its evidence and class.

    Args:
        skybiz: SkyBiz records, columns :data:`RECORD_COLUMNS`.
        smartacc: SmartAcc records, same columns.
        workers: threads rapidfuzz may use for name similarity (``-1``: all cores).

    Returns:
        Columns ``skybiz_row``, ``smartacc_row`` (positions in the frames given), :data:`EVIDENCE_COLUMNS`,
        ``match_class`` and ``evidence`` (a sentence a person can read), sorted by both positions.
    """
    # The two sides' keys at once: their Arrow string kernels release the GIL, so the second core takes one
    # side (at 200,000 customers a side, 0.8 s of a 3 s rebuild in series).
    with ThreadPoolExecutor(2, thread_name_prefix="skysmart-keys") as pool:
        sky_keys = pool.submit(Features.of, skybiz)
        sma = Features.of(smartacc).frame
        sky = sky_keys.result().frame
    pairs = candidate_pairs(sky, sma)
    a = sky.iloc[pairs["skybiz_row"].to_numpy()].reset_index(drop=True)
    b = sma.iloc[pairs["smartacc_row"].to_numpy()].reset_index(drop=True)
    out = pairs.reset_index(drop=True)
    names_a = a["name_key"].fillna("").tolist()
    names_b = b["name_key"].fillna("").tolist()
    scores = np.zeros(len(out), dtype=np.float64)
    if len(out):
        similar = cpdist(names_a, names_b, scorer=fuzz.token_sort_ratio, workers=workers)
        scores = np.asarray(similar, dtype=np.float64)
    out["name_score"] = np.round(scores / 100.0, 3)
    phone = np.zeros(len(out), dtype=bool)
    for pa_ in PHONE_COLUMNS:
        for pb in PHONE_COLUMNS:
            phone |= _equal(a[pa_], b[pb])
    out["phone_match"] = phone
    out["phones_differ"] = ~phone & _any_phone(a) & _any_phone(b)
    out["name_known"] = (a["name_key"].notna() & b["name_key"].notna()).to_numpy(dtype=bool)
    out["email_match"] = _equal(a["email_key"], b["email_key"])
    out["emails_differ"] = (
        a["email_key"].notna().to_numpy(dtype=bool)
        & b["email_key"].notna().to_numpy(dtype=bool)
        & ~out["email_match"].to_numpy(dtype=bool)
    )
    out["registration_match"] = _equal(a["registration_key"], b["registration_key"])
    out["postcode_match"] = _equal(a["postcode_key"], b["postcode_key"])
    out["town_match"] = _equal(a["town_key"], b["town_key"])
    out["match_class"] = classify(out)
    out["evidence"] = _evidence(out, a, b)
    return out.drop(columns=["name_known"])


def candidate_pairs(sky: pd.DataFrame, sma: pd.DataFrame) -> pd.DataFrame:
    """Distinct ``(skybiz_row, smartacc_row)`` pairs that share a blocking key (near-linear, in DuckDB).

    A key over its cap on either side still pairs records whose name keys are equal too (at most the cap
    of them per key and name): a branch whose only links to its twin are the head office's phone and
    ``info@`` must still meet it, or the push would take it for missing and create it twice.

    One query per kind of key, their pairs united here: a key only ever meets keys of its own kind, and the
    windows and joins over one kind at a time take less than half the memory of all four at once, and less
    time (at a million customers a side 0.54 GB instead of 1.36 GB, 5.3 s instead of 5.7 s).
    """
    sky_keys, sma_keys = _key_codes(sky, sma)
    width = len(sma) + 1  # a pair as one integer, skybiz_row * width + smartacc_row: sorted as the pair
    found: list[np.ndarray] = []
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET threads = 2")
        con.register("sky_features", sky_keys)
        con.register("sma_features", sma_keys)
        for kind, cap in BLOCK_CAPS.items():
            pairs = con.execute(
                f"""
                WITH s AS (SELECT k.*, count(*) OVER (PARTITION BY k.key) AS n
                           FROM ({_blocking_keys(kind, "sky_features")}) k),
                     m AS (SELECT k.*, count(*) OVER (PARTITION BY k.key) AS n
                           FROM ({_blocking_keys(kind, "sma_features")}) k),
                     crowded_s AS (SELECT s.* FROM s
                                   QUALIFY count(*) OVER (PARTITION BY s.key, s.name_key) <= {cap}),
                     crowded_m AS (SELECT m.* FROM m
                                   QUALIFY count(*) OVER (PARTITION BY m.key, m.name_key) <= {cap})
                SELECT s.row AS skybiz_row, m.row AS smartacc_row
                FROM s JOIN m ON s.key = m.key
                WHERE s.n <= {cap} AND m.n <= {cap}
                UNION ALL
                SELECT s.row, m.row
                FROM crowded_s s JOIN crowded_m m ON s.key = m.key AND s.name_key = m.name_key
                WHERE s.n > {cap} OR m.n > {cap}
                """
            ).fetchnumpy()
            sky_rows = np.asarray(pairs["skybiz_row"], dtype=np.int64)
            found.append(sky_rows * width + np.asarray(pairs["smartacc_row"], dtype=np.int64))
    finally:
        con.close()
    codes = np.unique(np.concatenate(found))
    return pd.DataFrame({"skybiz_row": codes // width, "smartacc_row": codes % width})


def classify(evidence: pd.DataFrame) -> pd.Series:
    """The class of each pair from its evidence columns (the only place the thresholds are applied).

    ``name_known`` (optional, default true) says both names could be compared; ``phones_differ`` that both
    records carry phone numbers and none agrees.
    """
    phone, email, registration = (
        evidence["phone_match"],
        evidence["email_match"],
        evidence["registration_match"],
    )
    ids = phone.astype(int) + email.astype(int) + registration.astype(int)
    differ = evidence["phones_differ"]
    postcode = evidence["postcode_match"]
    known = (
        evidence["name_known"] if "name_known" in evidence.columns else pd.Series(True, index=evidence.index)
    )
    name = evidence["name_score"]
    alike = known & (name >= SAME_NAME_ONE_ID)
    same = (
        (phone & alike)
        | (email & alike & ~differ)
        | (((ids >= 2) | registration) & known & (name >= SAME_NAME_STRONG_ID))
        | (~known & ((ids >= 2) | ((ids >= 1) & postcode)))
    )
    possible = (
        phone
        | (email & alike)
        | (email & ~differ & known & (name >= SAME_NAME_STRONG_ID))
        | (known & (name >= POSSIBLE_NAME_SAME_POSTCODE) & postcode & ~(differ & evidence["emails_differ"]))
        | (~known & (ids >= 1))
    )
    return pd.Series(
        np.where(same, SAME, np.where(possible, POSSIBLE, DIFFERENT)), index=evidence.index, dtype="string"
    )


#: Each kind of blocking key (:data:`BLOCK_CAPS`) and the feature columns (:func:`_key_codes`) that hold it:
#: a record's exact keys that may be shared with its twin. A missing part makes a missing key, which pairs
#: nothing.
_BLOCKING_COLUMNS: Final = {
    "phone": PHONE_COLUMNS,
    "email": ("email_key",),
    "registration": ("registration_key",),
    "name_postcode": ("name_postcode_key",),
}


def _blocking_keys(kind: str, features: str) -> str:
    """Long table ``row, key, name_key`` of one kind of key of the ``features`` relation, each row once."""
    selects = " UNION ALL ".join(
        f"SELECT row, {column} AS key, name_key FROM {features}" for column in _BLOCKING_COLUMNS[kind]
    )
    return f"SELECT DISTINCT row, key, name_key FROM ({selects}) WHERE key IS NOT NULL"


#: The feature columns coded together (:func:`_key_codes`), by family: values are compared within one (a
#: phone with any phone). Each kind of blocking key is a family, and the name key (which crowded keys pair
#: by) is one of its own.
_KEY_FAMILIES: Final = (("name_key",), *_BLOCKING_COLUMNS.values())


def _key_codes(sky: pd.DataFrame, sma: pd.DataFrame) -> tuple[pa.Table, pa.Table]:
    """Each side's blocking keys as integers numbered by row, one code per distinct text in a key family.

    Blocking compares keys for equality only, so codes shared by both sides pair exactly the records the
    texts would; DuckDB's windows and joins over integers take a fraction of the memory (at 200k customers
    per side the join over the texts raised a rebuild's resident set by 210 MB).
    """
    sides = [f.assign(name_postcode_key=f["name_key"] + "|" + f["postcode_key"]) for f in (sky, sma)]
    coded: list[dict[str, pa.Array]] = [
        {"row": pa.array(np.arange(len(side), dtype=np.int64))} for side in sides
    ]
    for family in _KEY_FAMILIES:
        texts = pa.chunked_array(
            [chunk for side in sides for c in family for chunk in _arrow_text(side[c]).chunks], pa.string()
        )
        codes = texts.combine_chunks().dictionary_encode().indices
        offset = 0
        for side, out in zip(sides, coded, strict=True):
            for column in family:
                out[column] = codes.slice(offset, len(side))
                offset += len(side)
    return pa.table(coded[0]), pa.table(coded[1])


def _arrow_text(values: pd.Series) -> pa.ChunkedArray:
    array = pa.array(values, type=pa.string(), from_pandas=True)
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array], pa.string())


def _any_phone(features: pd.DataFrame) -> np.ndarray:
    present = np.zeros(len(features), dtype=bool)
    for column in PHONE_COLUMNS:
        present |= features[column].notna().to_numpy(dtype=bool)
    return present


def _equal(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where a missing value on either side is "no"."""
    return (a.notna() & b.notna() & (a.astype("string") == b.astype("string")).fillna(False)).to_numpy(
        dtype=bool
    )


def _evidence(out: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """A readable account per pair: what agrees, with the shared values."""
    if not len(out):
        return pd.Series([], dtype="string")
    name = "name " + (out["name_score"] * 100).round().astype(int).astype(str) + "%"
    parts = [name]
    for flag, label, values in (
        ("phone_match", "phone", _shared_phone(a, b)),
        ("email_match", "e-mail", a["email_key"]),
        ("registration_match", "registration no.", a["registration_key"]),
        ("postcode_match", "postcode", a["postcode_key"]),
        ("town_match", "town", a["town_key"]),
    ):
        text = ("; " + label + " " + values.fillna("").astype(str)).where(out[flag].to_numpy(), "")
        parts.append(text)
    parts.append(pd.Series(np.where(out["phones_differ"].to_numpy(), "; phones differ", ""), dtype="string"))
    parts.append(pd.Series(np.where(out["emails_differ"].to_numpy(), "; e-mails differ", ""), dtype="string"))
    result = parts[0].astype(str)
    for part in parts[1:]:
        result = result + part.astype(str).to_numpy()
    return result.astype("string")


def _shared_phone(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """The first phone key of ``a`` that ``b`` also has (empty where none is shared)."""
    found = pd.Series([None] * len(a), dtype="string")
    for pa_ in PHONE_COLUMNS:
        hit = np.zeros(len(a), dtype=bool)
        for pb in PHONE_COLUMNS:
            hit |= _equal(a[pa_], b[pb])
        found = found.mask(found.isna() & hit, a[pa_])
    return found
