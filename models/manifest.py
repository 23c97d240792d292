"""Model manifests: what a model version takes and gives, how it scored, what it was trained on."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


class ModelError(ValueError):
    """A model that must not be used: unreadable, or not matching its manifest or the core's features."""


@dataclass
class Manifest:
    name: str                        # propensity | clusters | next_interest
    version: str
    kind: str                        # classifier | clusterer | sequence
    inputs: list[dict]               # [{"name", "dtype", "shape"}], shape entries null for any size
    outputs: list[dict]              # [{"name", "dtype"}] the scorer reads
    feature_names: list[str] = field(default_factory=list)
    vocabulary: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    training_data: dict = field(default_factory=dict)
    created: str = ""
    algorithm: str = ""

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"{path}: no manifest") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path}: manifest is not JSON ({exc})") from None
        known = set(cls.__dataclass_fields__)
        missing = {"name", "version", "kind", "inputs", "outputs"} - set(data)
        if missing:
            raise ModelError(f"{path}: manifest lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in known})


_ONNX_TYPES = {1: "float32", 7: "int64", 11: "float64", 6: "int32"}


def check_graph(manifest: Manifest, session, core_features: tuple[str, ...] | None) -> None:
    """Refuse a model whose ONNX inputs/outputs or feature order do not match its manifest and the core."""
    where = f"model {manifest.name} {manifest.version}"
    got_inputs = {i.name: i for i in session.get_inputs()}
    for spec in manifest.inputs:
        i = got_inputs.get(spec["name"])
        if i is None:
            raise ModelError(f"{where}: the graph has no input {spec['name']!r} (it has {sorted(got_inputs)})")
        dtype = i.type.replace("tensor(", "").replace(")", "")
        want = spec["dtype"].replace("float32", "float").replace("float64", "double")
        if dtype != want:
            raise ModelError(f"{where}: input {i.name} is {dtype}, the manifest says {spec['dtype']}")
        shape = [d if isinstance(d, int) else None for d in i.shape]
        if len(shape) != len(spec["shape"]) or any(a is not None and b is not None and a != b
                                                  for a, b in zip(shape, spec["shape"])):
            raise ModelError(f"{where}: input {i.name} has shape {shape}, the manifest says {spec['shape']}")
    outs = {o.name for o in session.get_outputs()}
    for spec in manifest.outputs:
        if spec["name"] not in outs:
            raise ModelError(f"{where}: the graph has no output {spec['name']!r} (it has {sorted(outs)})")
    if manifest.feature_names and core_features is not None:
        if tuple(manifest.feature_names) != tuple(core_features):
            a, b = manifest.feature_names, list(core_features)
            k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
            raise ModelError(f"{where}: trained on {len(a)} features, the core makes {len(b)}; first difference at "
                             f"position {k}: model {a[k] if k < len(a) else None!r}, core "
                             f"{b[k] if k < len(b) else None!r}")
        width = manifest.inputs[0]["shape"][-1]
        if width is not None and width != len(core_features):
            raise ModelError(f"{where}: input width {width} but the core makes {len(core_features)} features")
