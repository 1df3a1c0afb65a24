"""One-time conversion of an installed Detoxify checkpoint to ONNX (fp32 + dynamic int8).

The only module of the guard that needs torch (the ``r1desk[torch]`` extra): it loads the checkpoint
through Detoxify's own code, exactly as ``DetoxifyScorer`` does, and writes beside it::

    <model_type>/onnx/model.onnx        the model with Detoxify's sigmoid folded in: inputs → probabilities
    <model_type>/onnx/model.int8.onnx   the same after onnxruntime's dynamic int8 quantisation (MatMul/Gemm)
    <model_type>/onnx/tokenizer.json    the fast (``tokenizers``) version of the checkpoint's tokenizer
    <model_type>/onnx/meta.json         classes, inputs, max length, padding, where it came from

``r1desk.core.guard.detoxify_onnx`` runs these with onnxruntime and ``tokenizers`` only. The folder
lives inside the weights folder, so re-importing the weights (which replaces that folder) drops a
stale conversion. Run it by hand with ``python -m r1desk.core.guard.onnx_export TYPE [TYPE...]``.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from r1desk.core.guard import weights
from r1desk.core.guard.detoxify_onnx import (FORMAT, FP32_NAME, INT8_NAME, META_NAME, TOKENIZER_NAME,
                                             onnx_folder)
from r1desk.fileutil import staged_folder
from r1desk.errors import ClassifierUnavailableError

log = logging.getLogger("r1desk.guard")

OPSET = 17
# Texts used to trace the graph: of different lengths, so the traced graph keeps the padding mask.
_TRACE_TEXTS = ["hello", "the answer is two plus two, and that equals four."]


def _require_export_tools() -> None:
    missing = []
    for module in ("torch", "transformers", "detoxify", "onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ClassifierUnavailableError(
            f"converting Detoxify weights to ONNX needs {', '.join(missing)}",
            hint="install the conversion extra: pip install 'r1desk[torch]'")


def _max_length(tokenizer: Any, config: Any) -> int:
    """What Detoxify's ``truncation=True`` truncates to: the tokenizer's model_max_length, bounded by
    the model's position embeddings when the tokenizer does not say (transformers' huge default)."""
    limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
    positions = int(getattr(config, "max_position_embeddings", 512) or 512)
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta"):
        positions -= 2  # padding_idx offset: two positions are never used
    return limit if 0 < limit <= 100_000 else positions


def _fast_tokenizer(hf_dir: Path) -> Any:
    """The fast tokenizer of the checkpoint's base model (converted from the slow files if needed)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir), use_fast=True, local_files_only=True)
    if not getattr(tok, "is_fast", False):
        raise ClassifierUnavailableError(f"the tokenizer in {hf_dir} has no fast (tokenizers) version")
    return tok


def export(model_type: str, root: Path | None = None, *, quantize: bool = True) -> Path:
    """Convert the installed ``model_type`` checkpoint; returns the onnx folder. Replaces an older one."""
    _require_export_tools()
    import numpy as np
    import torch
    import transformers
    from detoxify import Detoxify

    checkpoint, hf_dir = weights.require(model_type, root)
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated there
    started = time.perf_counter()
    try:
        detox = Detoxify(model_type, checkpoint=str(checkpoint), huggingface_config_path=str(hf_dir),
                         device="cpu")
    except (OSError, ValueError, RuntimeError, KeyError, AttributeError) as exc:
        raise ClassifierUnavailableError(f"Detoxify '{model_type}' failed to load from {checkpoint}: {exc}") from None
    model = detox.model.eval()
    try:  # the eager attention traces to plain MatMul/Softmax (what int8 quantisation handles best)
        model.set_attn_implementation("eager")
    except (AttributeError, ValueError):
        pass
    slow = detox.tokenizer
    fast = _fast_tokenizer(hf_dir)
    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                   if n in slow.model_input_names]
    max_length = _max_length(slow, model.config)

    # The fast tokenizer must cut texts into the same ids as the one Detoxify uses.
    probe = _TRACE_TEXTS + ["Ünïcödé, ÇA VA? ok!!", "x " * (max_length + 10)]
    a = slow(probe, truncation=True, padding=True)["input_ids"]
    b = fast(probe, truncation=True, padding=True, max_length=max_length)["input_ids"]
    if a != b:
        raise ClassifierUnavailableError(f"the fast tokenizer of {hf_dir} does not match Detoxify's own")

    class WithSigmoid(torch.nn.Module):  # Detoxify.predict applies a sigmoid to the logits
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.inner(**dict(zip(input_names, args))).logits)

    sample = slow(_TRACE_TEXTS, return_tensors="pt", padding=True)
    folder = onnx_folder(model_type, root)
    with staged_folder(folder, prefix=".onnx-") as staging:
        fp32 = staging / FP32_NAME
        dynamic = {n: {0: "batch", 1: "sequence"} for n in input_names} | {"probabilities": {0: "batch"}}
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shape checks: traced with padding
            torch.onnx.export(WithSigmoid(model), tuple(sample[n] for n in input_names), str(fp32),
                              input_names=input_names, output_names=["probabilities"],
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
        fast.backend_tokenizer.save(str(staging / TOKENIZER_NAME))
        _check(fp32, detox, fast, input_names, max_length)
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            from onnxruntime.quantization.shape_inference import quant_pre_process

            # Pre-processing folds the Transpose of weights shared across layers (ALBERT reuses one layer
            # 12 times) into constants; without it those MatMuls stay fp32 (albert-base int8: 43 → 12 ms).
            source = staging / "pre.onnx"
            try:
                quant_pre_process(str(fp32), str(source), skip_symbolic_shape=True)
            except Exception as exc:  # noqa: BLE001 - an optimisation only: quantise the plain export
                log.warning("ONNX pre-processing before int8 quantisation failed (%s); quantising as exported", exc)
                source = fp32
            hint = _DropHint()  # onnxruntime's hint to pre-process, logged on the root logger
            logging.getLogger().addFilter(hint)
            try:
                quantize_dynamic(str(source), str(staging / INT8_NAME), weight_type=QuantType.QInt8)
            finally:
                logging.getLogger().removeFilter(hint)
                (staging / "pre.onnx").unlink(missing_ok=True)
        pad_id = fast.pad_token_id if fast.pad_token_id is not None else 0
        install = weights.model_folder(model_type, root) / weights.INSTALL_NAME
        meta = {
            "format": FORMAT, "model_type": model_type,
            "classes": list(detox.class_names), "inputs": input_names, "max_length": max_length,
            "pad_id": int(pad_id), "pad_token": str(fast.pad_token or "[PAD]"),
            "architecture": type(model).__name__, "opset": OPSET, "int8": quantize,
            "source": json.loads(install.read_text(encoding="utf-8")).get("source") if install.is_file() else None,
            "exported_with": {"torch": torch.__version__, "transformers": transformers.__version__,
                              "numpy": np.__version__},
        }
        (staging / META_NAME).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    log.info("converted Detoxify %s to ONNX in %s (%.1f s)", model_type, folder, time.perf_counter() - started)
    return folder


class _DropHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _check(path: Path, detox: Any, fast: Any, input_names: list[str], max_length: int) -> None:
    """The exported graph gives Detoxify's scores (fp32: within 1e-4) on a padded batch and a single text."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for texts in (_TRACE_TEXTS[::-1] + ["you are stupid and i hate it"], ["one text, no padding"]):
        enc = fast(texts, truncation=True, padding=True, max_length=max_length, return_tensors="np")
        got = session.run(None, {n: enc[n].astype(np.int64) for n in input_names})[0]
        ref = detox.predict(texts)
        want = np.array([np.atleast_1d(ref[c]) for c in detox.class_names], dtype=np.float32).T
        diff = float(np.abs(got - want).max())
        if diff > 1e-4:
            raise ClassifierUnavailableError(f"the ONNX export of {path.parent.parent.name} differs from "
                                             f"Detoxify by {diff:.2g}")


def import_and_convert(model_type: str, checkpoint_file: Path, config_dir: Path, *,
                       root: Path | None = None) -> weights.WeightsStatus:
    """``weights.import_weights`` followed by the ONNX conversion (the import path with the torch extra)."""
    status = weights.import_weights(model_type, checkpoint_file, config_dir, root=root)
    export(model_type, root)
    return status


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m r1desk.core.guard.onnx_export",
                                 description="Convert installed Detoxify weights to ONNX (needs r1desk[torch]).")
    ap.add_argument("model_types", nargs="*", help="default: every installed type")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 model")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    types = args.model_types or weights.installed_types()
    if not types:
        print("no Detoxify weights installed", file=sys.stderr)
        return 2
    try:
        for model_type in types:
            print(export(model_type, quantize=not args.no_int8))
    except ClassifierUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
