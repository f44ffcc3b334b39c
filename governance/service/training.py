"""Train versions from a user's table, and retrain them in jobs with reviewers' corrections folded in."""

from __future__ import annotations

import re
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

import duckdb

from governance.errors import Conflict, GovernError, InvalidInput
from governance.faults import failpoint
from governance.limits import max_groups
from governance.records import PredictionSet, Version
from governance.roles import Action
from governance.service.base import _require_model, check_name, shown
from governance.service.evaluations import TRAINED_CHALLENGER, origin_source
from governance.service.policies import PolicyActions
from governance.service.registry import RegistryActions, _new_prediction_set
from governance.store import registry

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from policies.schema import Policy
    from training.trainer import TrainConfig, TrainedModel

ROW_ID = "row_id"  # the row's position in the user's file: how corrections find their row again
SCORE = "govern_score"
REFERENCE_ROWS = 20_000
# Called after each epoch with (epoch, epochs, that epoch's record); False stops the training.
EpochCallback = Callable[[int, int, dict[str, Any]], bool]


@dataclass(frozen=True)
class TrainResult:
    version: Version
    eval_set: PredictionSet
    reference_set: PredictionSet
    epochs: int
    temperature: float
    corrections_applied: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    challenger_set: PredictionSet | None = None  # the logistic regression's scores on the eval rows
    notes: list[str] = field(default_factory=list)  # what the user should know about the data (`sensitive_notes`)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version.to_dict(), "eval_set": self.eval_set.id, "reference_set": self.reference_set.id,
                "challenger_set": self.challenger_set.id if self.challenger_set else None,
                "epochs": self.epochs, "temperature": self.temperature,
                "corrections_applied": self.corrections_applied, "notes": self.notes}


@dataclass(frozen=True)
class ScoredFile:
    """What `predict_file` wrote: the file, its rows, the score column, the mean score, per categorical
    column the rows holding a value the model never saw in training (scored as unseen), per numeric column
    the rows without a finite number (scored as the training mean) and those over a million standard
    deviations from it (scored as that far: 1e308 had been clipped without a word), and per column the
    version shifts scores by, the rows without a group (no shift)."""

    out: Path
    rows: int
    score_column: str
    mean_score: float
    unseen: dict[str, int]
    not_numbers: dict[str, int] = field(default_factory=dict)  # numeric column → rows empty, not numbers or inf
    no_group: dict[str, int] = field(default_factory=dict)  # offset column → rows without a group (no offset)
    far_out: dict[str, int] = field(default_factory=dict)  # numeric column → rows clipped at FARTHEST deviations

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "rows": self.rows, "score_column": self.score_column,
                "mean_score": self.mean_score, "unseen": self.unseen, "not_numbers": self.not_numbers,
                "no_group": self.no_group, "far_out": self.far_out}


def read_table(path: Path, *, what: str = "training data", delimiter: str = ",",
               remedy: str = "pass --delimiter {found!r}") -> pd.DataFrame:
    """A CSV (separated by `delimiter`) or Parquet table; `remedy` says what to do when a CSV looks separated by
    another character (`ingest.refuse_single_delimited_column`)."""
    import pandas as pd

    from governance.ingest import detect_format, refuse_single_delimited_column, refuse_too_wide
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{what} {path} " + ("is not a regular file." if path.exists() else "does not exist."))
    refuse_too_wide(path, "read", delimiter)  # before pandas loads a million columns
    if detect_format(path) != "parquet":  # pandas renames a repeated header (age, age.1): refused, as ingest does
        import csv
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), [])
        refuse_single_delimited_column(path, header, delimiter, "read", remedy)
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise InvalidInput(f"{path.name} names column {', '.join(map(repr, repeated))} more than once in its "
                               "header; give each column its own name.")
    try:
        if detect_format(path) == "parquet":  # by suffix or by content (stored artifacts have no suffix)
            return pd.read_parquet(path)
        return pd.read_csv(path, skipinitialspace=True, sep=delimiter)
    except Exception as exc:  # pandas raises many kinds for unreadable files
        raise InvalidInput(f"cannot read {path.name} as CSV or Parquet ({exc}).") from exc


def split_rows(n: int, eval_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, eval rows), the same for the same n, fraction and seed."""
    import numpy as np
    order = np.random.default_rng(seed).permutation(n)
    n_eval = int(round(n * eval_fraction))
    return np.sort(order[n_eval:]), np.sort(order[:n_eval])


class TrainingActions(PolicyActions, RegistryActions):
    def train_version(self, *, model: str, data: Path, label: str, sensitive: Sequence[str] = (),
                      intersections: Sequence[Sequence[str]] = (),
                      features: Sequence[str] | None = None, config: TrainConfig | None = None,
                      version: str | None = None, eval_fraction: float = 0.25,
                      progress: EpochCallback | None = None, chosen: Collection[str] | None = None) -> TrainResult:
        """Train on `data`, register the version (artifact and training data by sha256) and ingest its
        predictions on a held-out eval split (and a reference sample of the training rows), so
        `evaluate` and `gate` can follow; a logistic regression fitted on the same training rows scores the
        same eval rows as the version's challenger. Registers the model first if it is new.

        Without `config`, or for the settings `chosen` does not name when it is given (the keys a config
        file set), the batch size and epochs are fitted to a small table (`sized_config`)."""
        from governance.ingest import intersection_problems
        from training.trainer import TrainConfig
        check_name("model", model)
        # who may train is settled before the file is read: a viewer learns nothing about its contents; a version
        # name already taken is refused now, not after the epochs (it is checked again when it is registered)
        def may_train(conn: duckdb.DuckDBPyConnection) -> None:
            self._authorize(conn, Action.REGISTER)
            if version is not None:
                check_name("version", version)
                if registry.get_version(conn, model, version) is not None:
                    raise Conflict(f"version {version!r} of model {model!r} is already registered; train another "
                                   "with --version (or leave it out for the next number).")
        self._run(may_train)
        frame = read_table(Path(data), remedy="`govern train` reads comma-separated CSV; save it with commas "
                                              "(or as Parquet) and train again")
        if frame.empty:
            raise InvalidInput(f"{Path(data).name} has a header but no data rows.")
        asked_features, features = features, _check_columns(frame, label, sensitive, features)
        given, config = config, config or TrainConfig(sensitive=tuple(sensitive))
        check_config(config)
        _check_categorical(frame, features, config.categorical)
        problems = intersection_problems(intersections, sensitive, frame.columns)
        if problems:  # refused before training, not after it when the predictions are ingested
            raise InvalidInput("; ".join(f"intersection {name!r}: {message}" for name, message in problems) + ".")
        if not 0 < eval_fraction < 1:
            raise InvalidInput(f"the eval fraction must lie between 0 and 1, not {eval_fraction}.")
        train_rows, eval_rows = split_rows(len(frame), eval_fraction, config.seed)
        _check_split(frame, label, train_rows, eval_rows, eval_fraction, sensitive)
        notes: list[str] = []
        if given is None or chosen is not None:
            config, sizing = sized_config(config, len(train_rows), chosen or ())
            notes += [sizing] if sizing else []
        meta = {"label": label, "features": list(features), "sensitive": list(sensitive),
                "eval_fraction": eval_fraction, "split_seed": config.seed, "data": Path(data).name}
        if intersections:  # only when asked: earlier artifacts' metadata stays byte-identical
            meta["intersections"] = [list(parts) for parts in intersections]
        if ROW_ID in frame.columns:  # the row ids are positions, not the table's own row_id (see _positions)
            meta["row_id"] = "position"
        result = self._fit_and_register(model=model, version=version, frame=frame, train_rows=train_rows,
                                        eval_rows=eval_rows, config=config, meta=meta, data=Path(data), parent=None,
                                        lineage=None, progress=progress,
                                        new_model=f"trained from {Path(data).name}")
        improving = still_improving(result.history)
        notes += [improving] if improving else []
        notes += _codes_taken_as_amounts(frame.iloc[train_rows], features, config.categorical)
        notes += _identifiers_taken_as_inputs(frame.iloc[train_rows], features)
        notes += _imbalance_note(frame.iloc[train_rows][label], model, result.version.version)
        inputs = [c for c in sensitive if c in features]
        if asked_features is None and inputs:
            notes.append(f"the sensitive column{'s' if len(inputs) > 1 else ''} {', '.join(map(repr, inputs))} "
                         f"{'are' if len(inputs) > 1 else 'is'} among the model's inputs (the default: every column "
                         "but the label), so the rows it scores must carry them; --features trains without them "
                         "(the predictions still keep them, for fairness).")
        if ROW_ID in frame.columns:
            notes.append(f"the table's column {ROW_ID!r} is not a feature and its values are not kept: {ROW_ID!r} is "
                         "govern's row id, each row's position in the file (by which reviewers' corrections find "
                         "their row); rename the column to train on it or keep it in the predictions.")
        try:  # the version is stored: a pack that cannot be read now costs the sensitive notes, not the command
            policy = self.bound_policy(model=model).loaded.policy
        except GovernError:
            return replace(result, notes=notes)
        return replace(result, notes=notes + evidence_notes(len(eval_rows), len(frame), policy)
                       + sensitive_notes(frame.iloc[eval_rows], sensitive, policy))

    def _fit_and_register(self, *, model: str, version: str | None, frame: pd.DataFrame, train_rows: np.ndarray,
                          eval_rows: np.ndarray, config: TrainConfig, meta: dict[str, Any], data: Path,
                          parent: str | None, lineage: dict[str, Any] | None, progress: EpochCallback | None,
                          weights: np.ndarray | None = None, corrections: int = 0,
                          new_model: str | None = None) -> TrainResult:
        import numpy as np

        from training.trainer import train
        label, features = meta["label"], meta["features"]
        # each row's position, always: a retraining job finds corrected rows by it (a table's own row_id column,
        # with other values, would send the corrections to other rows)
        frame = frame.assign(**{ROW_ID: np.arange(len(frame))})
        trained = train(frame.iloc[train_rows], label=label, features=features, config=config,
                        sample_weights=None if weights is None else weights[train_rows], on_epoch=progress)
        trained.meta = meta
        return self._publish(model=model, version=version, frame=frame, train_rows=train_rows, eval_rows=eval_rows,
                             trained=trained, data=data, parent=parent, lineage=lineage, corrections=corrections,
                             weights=weights, new_model=new_model)

    def _publish(self, *, model: str, version: str | None, frame: pd.DataFrame, train_rows: np.ndarray,
                 eval_rows: np.ndarray, trained: TrainedModel, data: Path, parent: str | None,
                 lineage: dict[str, Any] | None,
                 corrections: int = 0, weights: np.ndarray | None = None,
                 measure: Callable[[dict[str, PredictionSet]], Any] | None = None,
                 settle: Callable[[duckdb.DuckDBPyConnection, Version, dict[str, PredictionSet], Any], Any]
                 | None = None, new_model: str | None = None,
                 origin: tuple[str, TrainedModel] | None = None) -> TrainResult:
        """Register a trained version with its eval predictions, a reference sample of its training rows
        and its challenger (a logistic regression fitted on the same training rows and `weights`, scoring
        the same eval rows) in one unit of work, so the version appears whole or not at all. With `origin`
        (a version's number and model: where a retraining loop started) that model's scores on the same eval
        rows are registered too, split "origin": what the version's cost is judged against. The files
        (artifact, training data, prediction Parquet) are stored by sha256 first; a killed process leaves
        only such files, which the next attempt reuses. `measure(sets by split)` runs before the unit (the
        metric engine, so the store is not held meanwhile) and `settle(conn, version, sets by split,
        measured)` adds to the same unit (a retraining job records its evaluations, gates and finishes
        there). With `new_model` (its description) the model is registered in that unit too
        when it is not yet: a training that fails leaves no model without versions behind."""
        import numpy as np

        from governance.ingest import ColumnRoles
        from training.challenger import fit_challenger
        meta = trained.meta
        label, features, sensitive = meta["label"], meta["features"], meta["sensitive"]
        self._run(lambda conn: (self._authorize(conn, Action.REGISTER),
                                None if new_model is not None else _require_model(conn, model)))
        keep = [ROW_ID, label, *dict.fromkeys([*sensitive, *features])]
        roles = ColumnRoles(label=label, score=SCORE, id=ROW_ID, sensitive=tuple(sensitive),
                            features=tuple(c for c in dict.fromkeys(features) if c not in sensitive),
                            intersections=tuple(tuple(parts) for parts in meta.get("intersections", ())))
        sample = train_rows[np.random.default_rng(trained.config.seed).permutation(len(train_rows))[:REFERENCE_ROWS]]
        challenger = fit_challenger(frame.iloc[train_rows], label=label, features=features, seed=trained.config.seed,
                                    sample_weights=None if weights is None else weights[train_rows],
                                    categorical=trained.config.categorical)
        with tempfile.TemporaryDirectory() as tmp:
            artifact = Path(tmp) / f"{model}-{version or 'next'}.pt"
            artifact.write_bytes(trained.to_bytes())
            stored_artifact = (*self.artifacts.put_file(artifact), f"{model}.pt")
            training = self._store_dataset(Path(data))
            prepared = []
            scorers: list[tuple[str, np.ndarray, Any, str]] = [
                ("eval", eval_rows, trained, "eval.parquet"),
                ("reference", np.sort(sample), trained, "reference.parquet"),
                ("challenger", eval_rows, challenger, TRAINED_CHALLENGER)]
            if origin is not None:
                scorers.append(("origin", eval_rows, origin[1], origin_source(origin[0])))
            for split, rows, scorer, name in scorers:
                part = frame.iloc[rows][keep].copy()
                part[SCORE] = scorer.predict(frame.iloc[rows])
                path = Path(tmp) / name
                part.to_parquet(path, index=False)
                prepared.append((split, self._stage_prediction_file(path, roles)))
        drafts = [(ready, _new_prediction_set(model, version or "", split, None, roles, ready, self.actor or ""))
                  for split, ready in prepared]
        measured = measure({draft.split: draft for _, draft in drafts}) if measure is not None else None
        failpoint("publish.files_stored")

        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[Version, list[PredictionSet]]:
            if new_model is not None and registry.get_model(conn, model) is None:
                self._insert_model(conn, model, description=new_model)
            number = version or _next_number(conn, model)
            registered = self._insert_version(conn, model, number, stored_artifact, training, parent, lineage)
            sets = [self._insert_prediction_set(conn, ready, replace(draft, version=number)) for ready, draft in drafts]
            if settle is not None:
                settle(conn, registered, {found.split: found for found in sets}, measured)
            failpoint("publish.before_commit")
            return registered, sets

        registered, sets = self._run(unit)
        epochs = max((h.get("epoch", 0) for h in trained.history), default=0)
        return TrainResult(registered, sets[0], sets[1], epochs, trained.temperature, corrections, trained.history,
                           sets[2])

    def load_trained(self, *, model: str, version: str) -> TrainedModel:
        trained = self._trained_artifact(model, version, "retrained")
        problem = _retrainable(trained)
        if problem:
            raise InvalidInput(f"{model} version {version}'s artifact cannot be retrained: {problem}.")
        return trained

    def _trained_artifact(self, model: str, version: str, purpose: str) -> TrainedModel:
        from training.trainer import TrainedModel
        detail = self.show_version(model=model, version=version)
        path = self.artifacts.open_path(detail.version.artifact_sha256)
        try:
            with warnings.catch_warnings():  # torch warns before it refuses a pickle that is not its own
                warnings.simplefilter("ignore", UserWarning)
                return TrainedModel.from_bytes(path.read_bytes())
        except Exception as exc:
            raise InvalidInput(f"{model} version {version} was not trained by govern, so it cannot be {purpose} "
                               f"here ({type(exc).__name__}).") from exc

    def predict_file(self, *, model: str, version: str, file: Path, out: Path, score_column: str = "score",
                     delimiter: str = ",") -> ScoredFile:
        """Score every row of `file` (CSV or Parquet) with a version `govern train` or a retraining job made,
        and write the rows with a `score_column` (the calibrated probability, group offsets included) to
        `out` (.csv or .parquet, a new file): a production batch to `govern ingest --split production`.
        Values a categorical column never held in training score as unseen; the result counts them."""
        import os

        import numpy as np

        from governance.ingest import name_fault, name_key
        from training.data import FARTHEST, encode, number_values
        fault = name_fault(score_column)
        if fault == "empty":
            raise InvalidInput("the score column needs a name: --score-column is empty.")
        if fault == "control":
            raise InvalidInput("the score column needs a name without control, invisible or direction-changing "
                               "characters (--score-column).")
        if fault == "reserved":
            raise InvalidInput(f"the score column {score_column!r} starts with __govern, which ingest reserves for "
                               "its own columns; choose another --score-column.")
        out = Path(out)
        if len(out.name.encode("utf-8")) > 255:
            raise InvalidInput(f"the output name {out.name[:40]}… is longer than a file name may be (255 bytes).")
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise InvalidInput(f"the output {out.name} must end in .csv or .parquet.")
        if out.exists():
            raise InvalidInput(f"{out} already exists; choose a new file (nothing is overwritten).")
        if not out.parent.is_dir():
            raise InvalidInput(f"the folder {out.parent} does not exist.")
        self._run(lambda conn: self._authorize(conn, Action.INGEST))
        trained = self._trained_artifact(model, version, "scored")
        frame = read_table(Path(file), what="the file to score", delimiter=delimiter)
        if frame.empty:
            raise InvalidInput(f"{Path(file).name} has no data rows to score.")
        spec = trained.spec
        needed = [*spec.numeric, *spec.categorical, *(c for c in trained.offsets if c not in spec.categorical)]
        missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
        if missing:
            raise InvalidInput(f"{Path(file).name} has no column {', '.join(map(repr, missing))}, which {model} "
                               f"version {version} scores with (its columns: {_listed(list(frame.columns))}).")
        if name_fault(score_column, {name_key(str(c)) for c in frame.columns}) == "repeated":
            taken = next(str(c) for c in frame.columns if name_key(str(c)) == name_key(score_column))
            ignoring_case = (" (ingest compares names ignoring case and surrounding spaces)" if taken != score_column
                             else "")
            raise InvalidInput(f"{Path(file).name} already has a column {taken!r}{ignoring_case}; name the score "
                               "column otherwise with --score-column.")
        refuse_nested(frame, needed, "score")
        _, codes = encode(frame, spec)  # code 0: a value never seen in training, or none
        counts = {c: int(((codes[:, j] == 0).numpy() & frame[c].notna().to_numpy()).sum())
                  for j, c in enumerate(spec.categorical)}
        unseen = {column: count for column, count in counts.items() if count}
        not_numbers, far_out = {}, {}
        for column in spec.numeric:  # empty, not a number, or infinite: scored as the training mean
            values = number_values(frame[column])
            count = int((~np.isfinite(values)).sum())
            if count:
                not_numbers[column] = count
            with np.errstate(over="ignore", invalid="ignore"):
                far = int((np.isfinite(values) & (np.abs((values - spec.means[column]) / spec.stds[column])
                                                   > FARTHEST)).sum())
            if far:
                far_out[column] = far
        no_group = {c: int(frame[c].isna().sum()) for c in trained.offsets if frame[c].isna().any()}
        scored = frame.assign(**{score_column: trained.predict(frame)})
        handle, name = tempfile.mkstemp(dir=out.parent, prefix=".govern-predict-", suffix=out.suffix)
        os.close(handle)
        scratch = Path(name)
        try:
            if out.suffix.lower() == ".csv":
                scored.to_csv(scratch, index=False)
            else:
                scored.to_parquet(scratch, index=False)
            os.replace(scratch, out)
        finally:
            scratch.unlink(missing_ok=True)
        return ScoredFile(out, len(scored), score_column, float(scored[score_column].mean()), unseen, not_numbers,
                          no_group, far_out)


LIMITS = {"epochs": (1, 10_000), "batch_size": (1, 1_000_000), "patience": (1, 10_000),
          "curriculum_stages": (1, 100)}


def _retrainable(trained: TrainedModel) -> str | None:
    """What makes a stored model's settings unusable for retraining (a forged or damaged artifact), or None."""
    meta, config = trained.meta, trained.config
    missing = [k for k in ("label", "features", "sensitive", "eval_fraction", "split_seed") if k not in meta]
    if missing:
        return f"its metadata lacks {', '.join(missing)}"
    if not isinstance(meta["eval_fraction"], (int, float)) or not 0 < meta["eval_fraction"] < 1:
        return f"its eval fraction {meta['eval_fraction']!r} is not between 0 and 1"
    if not isinstance(meta["split_seed"], int) or not 0 <= meta["split_seed"] < 2**32:
        return f"its split seed {meta['split_seed']!r} is not an integer in [0, 2^32)"
    if not isinstance(meta["features"], list) or not isinstance(meta["sensitive"], list) \
            or meta["label"] in meta["features"] + meta["sensitive"]:
        return "its label, features and sensitive columns are inconsistent"
    for key, (low, high) in LIMITS.items():
        value = getattr(config, key)
        if not isinstance(value, int) or not low <= value <= high:
            return f"its training setting {key}={value!r} is outside [{low}, {high}]"
    if not config.hidden or not all(isinstance(h, int) and 1 <= h <= 4096 for h in config.hidden) \
            or len(config.hidden) > 16:
        return f"its hidden layer sizes {list(config.hidden)!r} are not 1 to 16 sizes of 1 to 4096"
    fractions = (config.validation_fraction, config.calibration_fraction, config.dropout)
    if not all(isinstance(f, (int, float)) and 0 <= f < 1 for f in fractions) or \
            config.validation_fraction + config.calibration_fraction >= 0.9:
        return "its validation, calibration or dropout fractions are out of range"
    return None


def _next_number(conn: duckdb.DuckDBPyConnection, model: str) -> str:
    """One more than the highest numeric version of the model (read inside the registering unit)."""
    numbers = [int(v.version) for v in registry.list_versions(conn, model) if re.fullmatch(r"\d+", v.version)]
    return str(max(numbers, default=0) + 1)


def _listed(names: Sequence[str], first: int = 15) -> str:
    """The first `first` names (each cut where it is long), and how many more there are."""
    more = len(names) - first
    return ", ".join(map(shown, names[:first])) + (f" and {more} more" if more > 0 else "")


def _check_categorical(frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str]) -> None:
    """The `categorical` setting names features with at most MAX_CATEGORY_LEVELS distinct values."""
    from training.data import MAX_CATEGORY_LEVELS

    odd = [c for c in categorical if not isinstance(c, str)]
    if odd:
        raise InvalidInput(f"categorical must list column names; {shown(odd[0])} is not one.")
    outside = [c for c in categorical if c not in features]
    if outside:
        raise InvalidInput(f"categorical column{'s' * (len(outside) > 1)} {_listed(outside)} "
                           f"{'are' if len(outside) > 1 else 'is'} not among the features ({_listed(list(features))}).")
    for column in categorical:
        levels = frame[column].nunique(dropna=True)
        if levels > MAX_CATEGORY_LEVELS:
            raise InvalidInput(f"categorical column {shown(column)} has {levels:,} distinct values; at most "
                               f"{MAX_CATEGORY_LEVELS} can be categories (leave it out of categorical to take it as "
                               "an amount).")


def _codes_taken_as_amounts(frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str]) -> list[str]:
    """A note naming whole-number features with few distinct values trained as amounts: codes such as a census
    race code (1..9) read as amounts silently, and --categorical makes them categories. Whole numbers stored as
    floats (1.0 to 6.0, as statsmodels ships occupation codes) count too."""
    import numpy as np
    import pandas as pd

    found = []
    for column in features:
        values = frame[column]
        if column in categorical or pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_float_dtype(values):
            present = values.dropna().to_numpy(dtype=float)
            if not len(present) or not np.all(np.isfinite(present)) or not np.all(present == np.floor(present)):
                continue
        elif not pd.api.types.is_integer_dtype(values):
            continue
        levels = values.nunique(dropna=True)
        if 3 <= levels <= 30:
            found.append((column, levels))
    if not found:
        return []
    shown = ", ".join(f"{c!r} ({n} values)" for c, n in found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6
                                                                      else "")
    return [f"whole-number column{'s' * (len(found) > 1)} {shown} {'were' if len(found) > 1 else 'was'} trained as "
            f"amounts; if they are codes (a race or marital-status code), train with --categorical "
            f"{','.join(c for c, _ in found[:6])} to take them as categories."]


def _identifiers_taken_as_inputs(frame: pd.DataFrame, features: Sequence[str]) -> list[str]:
    """A note naming features with a different whole number or text in every training row, as an id has: a new
    user's trial trained on a file sorted by outcome with its id column among the inputs (the default, every
    column but the label), and the model learnt the row order: eval ROC AUC 0.9998, a leak the gate only warned
    of."""
    import pandas as pd

    found = [column for column in features
             if len(frame) >= 50 and (pd.api.types.is_integer_dtype(frame[column])
                                      or pd.api.types.is_object_dtype(frame[column])
                                      or pd.api.types.is_string_dtype(frame[column]))
             and not pd.api.types.is_bool_dtype(frame[column]) and frame[column].nunique(dropna=False) == len(frame)]
    if not found:
        return []
    named = ", ".join(map(repr, found[:6])) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
    return [f"{'columns' if len(found) > 1 else 'column'} {named} {'hold' if len(found) > 1 else 'holds'} a "
            "different value in every training row, as an id does, and the model trained on it: an id says nothing "
            "about the outcome, or leaks it (a file sorted by outcome); train with --features leaving it out."]


def _check_columns(frame: pd.DataFrame, label: str, sensitive: Sequence[str],
                   features: Sequence[str] | None) -> list[str]:
    import pandas as pd
    missing = [c for c in [label, *sensitive, *(features or [])] if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the training data has no column {', '.join(repr(c) for c in missing)} "
                           f"(its columns: {_listed(list(frame.columns))}).")
    if label in sensitive:
        raise InvalidInput(f"the label column {label!r} cannot also be a sensitive column.")
    if features and label in features:
        raise InvalidInput(f"the label column {label!r} cannot also be a feature: a model would read the answer "
                           "(leave it out of --features).")
    reserved = [c for c in (label, *sensitive, *(features or [])) if c == ROW_ID]
    if reserved:
        raise InvalidInput(f"{ROW_ID!r} is govern's row id (each row's position in the file, by which reviewers' "
                           "corrections find their row): rename that column to use it.")
    named_twice = sorted({c for c in sensitive if list(sensitive).count(c) > 1})
    if named_twice:
        raise InvalidInput(f"sensitive column {', '.join(map(repr, named_twice))} is named more than once.")
    for column, what in ((label, "the label column"), *((c, "sensitive column") for c in sensitive)):
        empty = frame[column].isna().to_numpy().nonzero()[0]
        if len(empty):
            hint = "" if column == label else " (name the missing group, e.g. 'unknown', or drop those rows)"
            raise InvalidInput(f"{what} {column!r} has {len(empty):,} empty cell{'s' * (len(empty) != 1)}, in "
                               f"data row{'s' * (len(empty) > 1)} {_rows(empty)}{hint}.")
    for column in sensitive:  # as ingest refuses them, before training: a refusal after it left stored files
        names = frame[column].astype(str)
        hidden = names.str.contains(_HIDDEN_CHARACTERS).to_numpy().nonzero()[0]
        if len(hidden):
            raise InvalidInput(f"sensitive column {column!r} has group names with control, invisible or direction-"
                               f"changing characters (they print as another name), in data row"
                               f"{'s' * (len(hidden) > 1)} {_rows(hidden)}: clean the column.")
        if names.nunique() > max_groups():
            raise InvalidInput(f"sensitive column {column!r} has {names.nunique():,} distinct values, more than the "
                               f"{max_groups():,} groups a sensitive column may have (is it an id? GOVERN_MAX_GROUPS "
                               "raises the limit).")
    refuse_nested(frame, [label, *sensitive, *(features or [c for c in frame.columns if c not in (label, ROW_ID)])],
                  "train on")
    values = set(pd.unique(frame[label]))
    if not values <= {0, 1}:
        found = sorted(map(str, values))
        hint = (f"; map the outcome you predict to 1 and the other to 0 (e.g. {found[1]!r} → 1, {found[0]!r} → 0) and "
                "train again" if len(found) == 2 else "")
        raise InvalidInput(f"the label column {label!r} must hold only 0 and 1 (found {found[:5]}){hint}.")
    chosen = list(features) if features else [c for c in frame.columns if c not in (label, ROW_ID)]
    if not chosen:
        raise InvalidInput(f"the training data has no column besides the label {label!r} to learn from.")
    _refuse_unscalable(frame, chosen)
    return chosen


def refuse_nested(frame: pd.DataFrame, columns: Sequence[str], doing: str) -> None:
    """InvalidInput naming the first of `columns` that holds nested values (a Parquet list, struct or map, read
    as arrays or dicts), as ingest refuses them: encoding one failed with "unhashable type: 'numpy.ndarray'"."""
    import numpy as np
    for column in dict.fromkeys(columns):
        values = frame[column]
        if values.dtype != object:
            continue
        first = values.dropna().head(1).tolist()
        if first and isinstance(first[0], (list, tuple, dict, set, np.ndarray)):
            raise InvalidInput(f"cannot {doing} column {column!r}: it holds nested values ({type(first[0]).__name__}"
                               "); govern reads numbers and text: flatten the column or leave it out of the file.")


LARGEST_NUMBER = 1e150  # past this a column's squares overflow: standardising it gave NaN after the epochs


def _refuse_unscalable(frame: pd.DataFrame, features: Sequence[str]) -> None:
    """Numbers training cannot standardise, refused before it starts: infinite values, and values so large that
    their squares overflow (1e308 in three rows trained every epoch, then failed in the challenger's fit)."""
    import numpy as np

    from training.data import _is_number, number_values
    for column in features:
        if not _is_number(frame[column]):
            continue
        values = number_values(frame[column])
        with np.errstate(invalid="ignore"):
            bad = (np.isinf(values) | (np.abs(values) > LARGEST_NUMBER)).nonzero()[0]
        if len(bad):
            raise InvalidInput(f"column {column!r} holds infinite or too large numbers (beyond ±1e150) in data "
                               f"row{'s' * (len(bad) > 1)} {_rows(bad)}: fix or empty those cells (an empty cell "
                               "counts as missing).")


_HIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _rows(positions: Sequence[int], shown: int = 5) -> str:
    """Data rows as a user counts them in the file (1 = the first row after the header)."""
    listed = ", ".join(str(int(i) + 1) for i in positions[:shown])
    return listed + (f" and {len(positions) - shown:,} more" if len(positions) > shown else "")


SIZED = ("batch_size", "epochs")  # the settings `sized_config` fits to a table the user did not set
MIN_STEPS = 1_500  # gradient steps a default training aims at, at most (early stopping may end it sooner)
MAX_SIZED_EPOCHS = 200


def sized_config(config: TrainConfig, train_rows: int, chosen: Collection[str]) -> tuple[TrainConfig, str | None]:
    """`config` with the batch size and epochs the user did not choose fitted to a small table, and a note
    saying so: at least 16 batches an epoch and about MIN_STEPS steps in all (up to MAX_SIZED_EPOCHS
    epochs; early stopping decides). The defaults (256 rows, 30 epochs) give a 200-row table one step an
    epoch: 30 steps, an untrained model (ROC AUC 0.77 on ISLR's Carseats, 0.97 sized)."""
    import math
    # the rows `train` learns from: its validation split, and with recalibrate its calibration split, held out
    learn = train_rows - int(train_rows * config.validation_fraction) - (
        int(train_rows * config.calibration_fraction) if "recalibrate" in config.strategies else 0)
    batch_size, epochs = config.batch_size, config.epochs
    if "batch_size" not in chosen and learn < batch_size * 16:
        batch_size = max(16, 2 ** int(math.log2(max(learn // 16, 1))))
    per_epoch = max(1, math.ceil(learn / batch_size))
    if "epochs" not in chosen and per_epoch * epochs < MIN_STEPS:
        epochs = max(epochs, min(MAX_SIZED_EPOCHS, math.ceil(MIN_STEPS / per_epoch)))
    changed = [f"{name} {new} instead of {old}" for name, new, old in (
        ("batch_size", batch_size, config.batch_size), ("epochs", epochs, config.epochs)) if new != old]
    if not changed:
        return config, None
    return replace(config, batch_size=batch_size, epochs=epochs), (
        f"a small table ({learn:,} rows to learn from): {' and '.join(changed)} (early stopping decides when to "
        "stop), so that training takes enough steps; set them in --config to choose.")


def still_improving(history: Sequence[dict[str, Any]]) -> str | None:
    """A note when training ran every epoch and the last had the lowest validation loss (more might fit),
    or when no epoch after the first lowered it (the model learned nothing its validation rows confirm)."""
    losses = [h["validation_loss"] for h in history if "validation_loss" in h]
    if len(losses) > 1 and min(losses[1:]) >= losses[0]:
        return (f"the validation loss never fell below the first epoch's ({losses[0]:.4g}): the model learned "
                "nothing its validation rows confirm; look for too few rows, or a column on another scale "
                "than in training (a number constant in the training rows).")
    if not losses or any("stopped" in h for h in history) or min(losses) < losses[-1]:
        return None
    return (f"the validation loss was still falling at the last epoch ({len(losses)} of {len(losses)}): more epochs "
            "(`epochs:` in --config) may fit better.")


def evidence_notes(eval_rows: int, rows: int, policy: Policy) -> list[str]:
    """A sentence for each rule of `policy` on an overall metric that blocks on too little evidence and needs more
    rows than the eval split holds: its gate blocks whatever the model, and files no review and no job (a new
    user's 400-row table met the default pack's 200-row floor at the gate, with nothing saying why or what to do)."""
    import math

    from policies.schema import MetricRule
    notes = []
    for rule in policy.rules:
        if not isinstance(rule, MetricRule) or rule.feature is not None or rule.insufficient != "block":
            continue
        floor = max(rule.min_samples, math.ceil(rule.min_share * eval_rows - 1e-9))
        if eval_rows >= floor:
            continue
        needed = math.ceil(floor / rows * 20) / 20 if rows else 1.0  # the next 5 %
        remedy = (f"train with --eval-fraction {needed:g} ({int(round(rows * needed)):,} eval rows)" if needed <= 0.5
                  else f"with {rows:,} rows in all, half of them would not do: more rows, or a pack with a lower floor")
        notes.append(f"the {eval_rows:,} eval rows are fewer than the {floor:,} the {policy.name} pack's {rule.id!r} "
                     f"rule needs to judge {rule.metric}, and it blocks without them: the gate will block this "
                     f"version whatever its metrics; {remedy}.")
    return notes


def sensitive_notes(eval_frame: pd.DataFrame, sensitive: Sequence[str], policy: Policy) -> list[str]:
    """For each sensitive column whose eval rows leave fewer than two groups that `policy`'s parity rules
    on it would judge, a sentence saying so: those rules set smaller groups aside (min_samples,
    min_share), so they can only report insufficient evidence and the gate passes whatever the gaps (a
    numeric column such as age, one group per value, is the usual cause). The floor is the lowest of the
    rules on the column; a column no parity rule judges gets no note."""
    import math

    from policies.schema import MetricRule
    notes = []
    for column in sensitive:
        sizes = eval_frame[column].astype(str).value_counts()
        floors = [max(rule.min_samples, math.ceil(rule.min_share * len(eval_frame) - 1e-9))
                  for rule in policy.rules if isinstance(rule, MetricRule) and rule.metric.startswith("fairness.")
                  and rule.group is None and rule.feature in (column, "every")]
        if not floors:
            continue
        floor = min(floors)
        judged = int((sizes >= floor).sum())
        small = sizes[sizes < floor]
        if judged < 2:
            numeric = " It is numeric: bin it (e.g. age_40_plus: yes/no) to judge it." \
                if eval_frame[column].dtype.kind in "iuf" and len(sizes) > 10 else ""
            notes.append(f"sensitive column {column!r} has {len(sizes):,} groups in the {len(eval_frame):,} eval rows, "
                         f"{judged} of them with {floor:,}+ rows: the {policy.name} pack's parity rules set smaller "
                         f"groups aside, so they cannot judge its fairness.{numeric}")
        elif small.sum() >= 0.25 * len(eval_frame):  # OJ: 3 of 5 stores, 46 % of the rows, judged by nobody
            rows = int(small.sum())
            notes.append(f"sensitive column {column!r}: {len(small):,} of its {len(sizes):,} groups ({rows:,} of the "
                         f"{len(eval_frame):,} eval rows, {rows / len(eval_frame):.0%}) have fewer than "
                         f"{floor:,} rows, so the {policy.name} pack's parity rules set them aside and judge its "
                         f"fairness on the other {judged} only; a larger eval split (--eval-fraction) or merged "
                         "groups judge more.")
        if judged >= 2 and eval_frame[column].dtype.kind in "iuf" and len(sizes) > 10:
            # a new user's trial: a 31-value health score as the sensitive column; parity over its values pushed
            # every group's rate up, to a model that selected 97.5 % of rows
            notes.append(f"sensitive column {column!r} is numeric with {len(sizes):,} values, each judged as a group "
                         "of its own; if they are amounts rather than categories, bin them (e.g. age_40_plus: "
                         "yes/no) to judge fairness between groups of people.")
    return notes


IMBALANCED = 0.1  # a label this rare (or this common) makes accuracy say little


def _imbalance_note(labels: pd.Series, model: str, version: str) -> list[str]:
    """A note when the label is rare (or nearly always 1): always answering the majority is then almost as
    accurate as any model, and the default threshold of 0.5 may select almost nobody (on Caravan, 6 % buyers,
    the first version selected no one and passed the default pack on accuracy 0.938, the majority's)."""
    rate = float(labels.mean())
    if IMBALANCED <= rate <= 1 - IMBALANCED:
        return []
    majority = 0 if rate < 0.5 else 1
    return [f"the label is 1 in {rate:.1%} of the training rows: answering {majority} for everyone would be "
            f"{max(rate, 1 - rate):.1%} accurate, so accuracy says little; judge this version by ROC AUC and recall "
            "(`govern evaluate` prints both), and set a decision threshold for your costs "
            f"(`govern evaluate {model} {version} --threshold T`; the gate judges at the evaluation's threshold, "
            "0.5 by default)."]


def _check_split(frame: pd.DataFrame, label: str, train_rows: np.ndarray, eval_rows: np.ndarray,
                 eval_fraction: float, sensitive: Sequence[str] = ()) -> None:
    """Refuse, before anything is trained or stored, a split a classifier cannot be trained or judged on
    (fairness compares at least two groups of each sensitive column in the eval rows)."""
    if len(eval_rows) == 0 or len(train_rows) < 2:
        raise InvalidInput(f"{len(frame):,} data row{'s' * (len(frame) != 1)} with eval fraction {eval_fraction:g} "
                           f"leave {len(train_rows):,} to train on and {len(eval_rows):,} to evaluate; "
                           "a model needs rows for both.")
    classes = set(frame[label].iloc[train_rows].astype(int))
    if len(classes) < 2:
        raise InvalidInput(f"the label column {label!r} holds only {next(iter(classes))} in the training rows; "
                           "a classifier needs examples of both 0 and 1.")
    for column in sensitive:
        groups = frame[column].iloc[eval_rows].astype(str).unique()
        if len(groups) < 2:
            where = "" if frame[column].nunique() < 2 else f" of the {len(eval_rows):,} eval rows"
            raise InvalidInput(f"sensitive column {column!r} holds one group ({groups[0]!r}) in every row{where}; "
                               "fairness compares at least two groups: leave it out of --sensitive.")


# Each training setting's type and the values it may take (a misspelt or out-of-range value trains a
# model that cannot be right: 0 hidden units, no epochs, a learning rate YAML read as the string "1e6").
# Bounds past any sensible training, so that a typo is refused in a sentence rather than run out of memory
# or time (an epochs of 1e11, a layer 100,000 wide: 40 GB for one weight matrix).
MAX_EPOCHS = 100_000
MAX_BATCH = 1_048_576
MAX_WIDTH, MAX_LAYERS = 4_096, 16
_SETTINGS: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "epochs": (int, lambda v: 1 <= v <= MAX_EPOCHS, f"between 1 and {MAX_EPOCHS:,}"),
    "batch_size": (int, lambda v: 1 <= v <= MAX_BATCH, f"between 1 and {MAX_BATCH:,}"),
    "patience": (int, lambda v: v >= 1, "at least 1"),
    "seed": (int, lambda v: 0 <= v < 2 ** 32, "between 0 and 2**32 - 1"),
    "curriculum_stages": (int, lambda v: 1 <= v <= 100, "between 1 and 100"),
    "learning_rate": (float, lambda v: v > 0, "above 0"),
    "weight_decay": (float, lambda v: v >= 0, "0 or more"),
    "dropout": (float, lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "validation_fraction": (float, lambda v: 0 < v < 1, "between 0 and 1"),
    "calibration_fraction": (float, lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "fairness_weight": (float, lambda v: v >= 0, "0 or more"),
    "fairness_sharpness": (float, lambda v: v > 0, "above 0"),
    "curriculum_start": (float, lambda v: 0 < v <= 1, "above 0 and at most 1"),
}


def check_config(config: TrainConfig) -> None:
    """Refuse training settings of the wrong type or out of range, naming each."""
    import math

    problems = []
    for name, (kind, ok, allowed) in _SETTINGS.items():
        value = getattr(config, name)
        typed = isinstance(value, (int, float)) and not isinstance(value, bool) and \
            (kind is float or isinstance(value, int)) and math.isfinite(value)
        if not typed:
            problems.append(f"{name} must be {'a whole number' if kind is int else 'a number'}, not {value!r}")
        elif not ok(value):
            problems.append(f"{name} must be {allowed}, not {value!r}")
    if (len(config.hidden) > MAX_LAYERS
            or any(isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= MAX_WIDTH for h in config.hidden)):
        shown = list(config.hidden) if len(config.hidden) <= 20 else f"{len(config.hidden)} layers"
        problems.append(f"hidden must list at most {MAX_LAYERS} layer widths, each between 1 and {MAX_WIDTH:,}, "
                        f"not {shown!r}")
    if not problems and config.validation_fraction + config.calibration_fraction >= 1:
        problems.append("validation_fraction and calibration_fraction together must leave rows to train on "
                        f"({config.validation_fraction:g} + {config.calibration_fraction:g})")
    if problems:
        raise InvalidInput("training config: " + "; ".join(problems) + ".")


def load_config(path: Path | None, *, sensitive: Sequence[str] = ()) -> tuple[TrainConfig, frozenset[str]]:
    """Training settings from a YAML/JSON file (keys of TrainConfig), and the keys it set; unknown keys are
    an error."""
    import yaml

    from training.trainer import TrainConfig

    values: dict[str, Any] = {}
    if path is not None:
        from policies.loader import repeated_keys
        try:
            text = Path(path).read_text()
            values = yaml.safe_load(text) or {}
            repeated = repeated_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInput(f"cannot read training config {path}: {first}") from exc
        if repeated:  # `{"epochs": 1, "epochs": 2}` trained 2, where a reader sees 1
            raise InvalidInput(f"training config {path}: {repeated[0]}.")
        if not isinstance(values, dict):
            raise InvalidInput(f"training config {path} must be a mapping of settings.")
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInput(f"unknown training settings {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
    for key in ("hidden", "strategies", "sensitive", "categorical"):
        if key in values:
            if not isinstance(values[key], (list, tuple)):
                raise InvalidInput(f"training config {path}: {key} must be a list, not {values[key]!r}.")
            values[key] = tuple(values[key])
    for key, value in values.items():  # YAML 1.1 reads 1e-3 as a number but 1e6 as a string
        if _SETTINGS.get(key, (None,))[0] is float and isinstance(value, str):
            try:
                values[key] = float(value)
            except ValueError:
                pass  # check_config names it
    given = frozenset(values)
    values.setdefault("sensitive", tuple(sensitive))
    try:
        config = TrainConfig(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"training config: {exc}") from exc
    check_config(config)
    return config, frozenset(given)
