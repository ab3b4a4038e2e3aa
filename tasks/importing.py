"""Turning task JSON into Task rows: used by the project import API and by storage sync.

A task is either flat data (`{"image": "s3://..."}`) or the full form
`{"data": {...}, "annotations": [...], "predictions": [...], "meta": {...}}`.
Creation is in bulk: one transaction, three INSERTs, whatever the number of tasks.
"""

import math
import re
from dataclasses import dataclass, field

from django.db import transaction

from core.api import MAX_TASK_DEPTH
from projects.models import Project
from tasks.models import Annotation, Prediction, Task, next_inner_id


class TaskFormatError(ValueError):
    """A task value that cannot be imported; the message says what is wrong."""


@dataclass
class ParsedTask:
    data: dict
    meta: dict = field(default_factory=dict)
    annotations: list = field(default_factory=list)
    predictions: list = field(default_factory=list)


#: How deep task JSON may nest: the task object is level 1; in the full form `{"data": ...}`,
#: `data` is level 2 and an annotation's `result` level 4. Why 100 and not a setting: core.api.
MAX_DEPTH = MAX_TASK_DEPTH

_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")  # NUL, lone UTF-16 surrogates
_SURROGATES = re.compile("[\ud800-\udfff]")


def _escaped(text):
    """`text` with NUL and lone surrogates written as `\\uXXXX`: safe in messages, JSON answers
    and database columns."""
    return _NOT_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _unstorable(item):
    """Why this JSON string, key or number cannot be stored and served, or None. Text and
    jsonb hold no NUL character, and jsonb no NaN or infinity, which Python's json makes of
    `1e400`; a lone surrogate (the JSON escape "\\ud800") is not Unicode text: no UTF-8 column
    or answer can carry it. Such values are refused on every database alike, before the
    INSERT would fail."""
    kind = type(item)
    if kind is str:
        if "\x00" in item:
            return "contains a NUL character (\\u0000), which cannot be stored"
        if not item.isascii() and (found := _SURROGATES.search(item)):
            return f"contains a lone surrogate ({_escaped(found.group())}), which is not valid Unicode text"
        return None
    if kind is float and not math.isfinite(item):
        return "is not a finite number, which cannot be stored"
    return None


def _all_storable(value, level=1):
    """The common, clean case without recursion and without building paths (5 us for a
    typical annotated task, against 9 us for the walk that also names the place): level by
    level, so that the depth costs one comparison per level."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return _unstorable(value) is None
    containers = [value]
    while containers:
        if level > MAX_DEPTH:
            return False
        level += 1
        inner = []
        for container in containers:
            if type(container) is dict:
                for key in container:
                    if type(key) is str and ("\x00" in key or (not key.isascii() and _SURROGATES.search(key))):
                        return False
                items = container.values()
            else:
                items = container
            for item in items:
                kind = type(item)
                if kind is dict or kind is list:
                    inner.append(item)
                elif kind is str:
                    if "\x00" in item or (not item.isascii() and _SURROGATES.search(item)):
                        return False
                elif kind is float and not math.isfinite(item):
                    return False
        containers = inner
    return True


def _shortened(path, most=120):
    return path if len(path) <= most else f"{path[:80]}...{path[-(most - 83):]}"


def unstorable_at(value, level=1):
    """(where, why) for the first part of the JSON `value` that cannot be stored, or None;
    `where` is a path such as `data.text` or `annotations[0].lead_time`. `level` is how deep
    `value` sits in its task (1: it is the task object). One walk checks the text, the numbers
    and the nesting (MAX_DEPTH); without recursion, whatever the depth."""
    if _all_storable(value, level):
        return None
    pending = [(value, "", level)]  # depth first, in document order: the first problem is named
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return _shortened(path), f"nests deeper than {MAX_DEPTH} levels"
            inner = []
            if isinstance(item, dict):
                for key, child in item.items():
                    key = str(key)
                    name = _escaped(key)  # the path goes into messages and tracebacks
                    where = f"{path}.{name}" if path else name
                    why = _unstorable(key)
                    if why is not None:
                        return _shortened(where), why
                    inner.append((child, where, depth + 1))
            else:
                inner = [(child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item)]
            pending.extend(reversed(inner))
        else:
            why = _unstorable(item)
            if why is not None:
                return _shortened(path), why
    return None


def refuse_unstorable(value, error=None, level=1):
    """Raise `error` (TaskFormatError by default) naming the part of `value` that cannot be
    stored; `level`: how deep `value` sits in its task (see MAX_DEPTH)."""
    found = unstorable_at(value, level)
    if found is not None:
        where, why = found
        raise (error or TaskFormatError)(f"{where or 'The value'} {why}")


def _result_list(item, what, index):
    if not isinstance(item, dict):
        raise TaskFormatError(f"{what} #{index} must be a JSON object, got {type(item).__name__}")
    result = item.get("result", [])
    if not isinstance(result, list):
        raise TaskFormatError(f"{what} #{index}: 'result' must be a list, got {type(result).__name__}")
    return result


def _number(item, name, what, index):
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskFormatError(f"{what} #{index}: '{name}' must be a number")
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise TaskFormatError(f"{what} #{index}: '{name}' is too large") from None


def parse_task(value) -> ParsedTask:
    """Validate one task value and split it into data, meta, annotations and predictions."""
    if not isinstance(value, dict):
        raise TaskFormatError(f"A task must be a JSON object, got {type(value).__name__}")
    refuse_unstorable(value)
    if not isinstance(value.get("data"), dict):
        return ParsedTask(data=value)

    meta = value.get("meta") or {}
    if not isinstance(meta, dict):
        raise TaskFormatError("'meta' must be a JSON object")
    # "completions" is the pre-1.0 Label Studio name of annotations.
    raw_annotations = value.get("annotations", value.get("completions")) or []
    raw_predictions = value.get("predictions") or []
    if not isinstance(raw_annotations, list):
        raise TaskFormatError("'annotations' must be a list")
    if not isinstance(raw_predictions, list):
        raise TaskFormatError("'predictions' must be a list")

    annotations = []
    for i, item in enumerate(raw_annotations):
        annotations.append(
            {
                "result": _result_list(item, "annotation", i),
                "was_cancelled": bool(item.get("was_cancelled", False)),
                "ground_truth": bool(item.get("ground_truth", False)),
                "lead_time": _number(item, "lead_time", "annotation", i),
            }
        )
    predictions = []
    for i, item in enumerate(raw_predictions):
        predictions.append(
            {
                "result": _result_list(item, "prediction", i),
                "score": _number(item, "score", "prediction", i),
                "model_version": str(item.get("model_version") or ""),
            }
        )
    return ParsedTask(data=value["data"], meta=meta, annotations=annotations, predictions=predictions)


def create_tasks(project, parsed_tasks, user=None):
    """Create tasks with their annotations and predictions in one transaction; return the
    tasks (with ids) in input order. `user` is recorded as the annotations' author."""
    if not parsed_tasks:
        return []
    with transaction.atomic():
        # The lock serialises inner_id allocation between concurrent imports of a project.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        first_id = next_inner_id(project.pk)
        limit = max(project.maximum_annotations, 1)
        tasks = []
        for offset, parsed in enumerate(parsed_tasks):
            done = sum(1 for a in parsed.annotations if not a["was_cancelled"])
            tasks.append(
                Task(
                    project=project,
                    data=parsed.data,
                    meta=parsed.meta,
                    inner_id=first_id + offset,
                    total_annotations=done,
                    cancelled_annotations=len(parsed.annotations) - done,
                    total_predictions=len(parsed.predictions),
                    is_labeled=done >= limit,
                )
            )
        Task.objects.bulk_create(tasks)
        Annotation.objects.bulk_create(
            Annotation(task=task, project=project, completed_by=user, **fields)
            for task, parsed in zip(tasks, parsed_tasks)
            for fields in parsed.annotations
        )
        Prediction.objects.bulk_create(
            Prediction(task=task, project=project, **fields)
            for task, parsed in zip(tasks, parsed_tasks)
            for fields in parsed.predictions
        )
    return tasks
