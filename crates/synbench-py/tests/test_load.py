"""`synbench.load` against damaged folders: every field of every file of a
small run (the first occurrence of each, array indices folded) dropped,
duplicated, truncated, retyped, set to NaN or out of range. Each mutation
must raise `FileError` naming the file and the field, or load scores
identical to the unmutated folder's; never another exception."""

import copy
import json
import re

import numpy as np

import synbench

SMALL = dict(shape=(6,), scales=(0.5, 1.5), n_train=120, n_test=120, epsilons=(0.0, 0.2), thresholds=(0.6, 0.8))


def paths(value, prefix=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield prefix + (i,)
            yield from paths(v, prefix + (i,))


def folded(path):
    return re.sub(r"\.\[", "[", ".".join("[]" if isinstance(s, int) else s for s in path))


def mutations(value, path):
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last, target = path[-1], parent[path[-1]]

    def edited(change):
        v = copy.deepcopy(value)
        p = v
        for step in path[:-1]:
            p = p[step]
        change(p)
        return v

    yield "drop", edited(lambda p: p.pop(last))
    if isinstance(last, int):
        yield "duplicate", edited(lambda p: p.insert(last, copy.deepcopy(target)))
    if isinstance(target, (list, str)) and len(target) > 0:
        yield "truncate", edited(lambda p: p.__setitem__(last, target[: len(target) // 2]))
    retyped = {dict: [], list: {}, str: 1, bool: "true"}.get(type(target), str(target))
    yield "retype", edited(lambda p: p.__setitem__(last, retyped))
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        yield "nan", edited(lambda p: p.__setitem__(last, "NaN"))
        yield "out_of_range", edited(lambda p: p.__setitem__(last, -(abs(target) + 1.5)))


def snapshot(result):
    return [getattr(result, n) for n in ("scores", "stderr", "accuracy", "bound")] + [result.estimate("population")]


def test_every_field_damaged_is_a_file_error_or_changes_nothing(tmp_path):
    out = tmp_path / "run"
    exp = synbench.Experiment(**SMALL, output_dir=out)
    for batch in exp.batches():
        exp.fold(batch, batch.inputs.reshape(len(batch), -1))
    exp.finish()
    baseline = snapshot(synbench.load(out))
    files = [out / "results.json"] + sorted((out / "scales").glob("scale_*.json"))
    count, errors, bad = 0, 0, []
    for file in files:
        original = file.read_text()
        value = json.loads(original)
        seen = set()
        for path in paths(value):
            if folded(path) in seen:
                continue
            seen.add(folded(path))
            for kind, mutated in mutations(value, path):
                file.write_text(json.dumps(mutated, indent=2))
                count += 1
                what = f"{kind} of {folded(path)} in {file.name}"
                try:
                    loaded = snapshot(synbench.load(out))
                except synbench.FileError as e:
                    errors += 1
                    # A scale that parts from another names both files (either may be the damaged one).
                    if str(file) not in str(e) or e.file not in map(str, files):
                        bad.append(f"{what}: names {e.file!r}: {e}")
                    if e.field is None and "missing field" not in str(e) and "unknown field" not in str(e):
                        bad.append(f"{what}: names no field: {e}")
                except Exception as e:  # noqa: BLE001 — any other exception is the failure under test
                    bad.append(f"{what}: {type(e).__name__}: {e}")
                else:
                    if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(loaded, baseline)):
                        bad.append(f"{what}: loaded other scores without an error")
        file.write_text(original)
    print(f"{count} mutations, {errors} FileErrors naming file and field, {count - errors} identical")
    assert not bad, "\n".join(bad[:40])
    assert count > 200
