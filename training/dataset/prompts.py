"""The texts the dataset builder sends to models: the caption instruction and the CoT teacher's prompt.

Both follow the source research (``reference/llm_tools.md`` §1.1, hoyso48/LLMforFM):

- an audio-language model captions each render: **instrument type first, then timbre, then envelope**,
  one sentence ("Electric piano, which has a warm, glassy tone ... and a long, gentle decay.");
- a teacher model gets the caption (the student's prompt), the patch JSON schema, the ground-truth
  patch JSON and the operator evidence segment map, and writes an analysis, a ``\\cot{...}`` block of
  reasoning written as if it did not know the answer, and the final JSON, which must equal the ground
  truth value for value. The student is trained on the ``\\cot{}`` text and the JSON only.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["CAPTION_INSTRUCTION", "TEACHER_SYSTEM", "teacher_user_text"]

CAPTION_INSTRUCTION = (
    "You are captioning the sounds of a dataset of DX7 FM synthesizer patches. Listen to this recording of "
    "one note played on one patch and describe it in one sentence of at most 40 words. Name the instrument "
    "type first (what the sound is or most resembles, e.g. electric piano, bell, brass, string pad, bass, "
    "snare drum, sound effect), then the timbre (bright or dark, warm, metallic, hollow, buzzy, breathy, "
    "...), then the envelope (attack, decay, sustain, release), in the form \"Instrument, which has ... .\" "
    "For example: \"Electric piano, which has a warm, glassy tone with a bright metallic tine at the onset "
    "and a long, gentle decay.\" Answer with the caption only: no preamble, no quotes, no list."
)

TEACHER_SYSTEM = (
    "You are an expert DX7 FM synthesis sound designer writing worked examples that teach a student model "
    "to program DX7 patches from text descriptions."
)

_TEACHER_TASK = r"""Your task: write the reasoning that leads from the description to this exact patch.

Answer in exactly three parts, in this order:

1. Analysis: your own notes (they are not shown to the student). Relate the description and the
   evidence to the patch: which operators are carriers and modulators, which ones make the brightness,
   the attack, the decay, the metallic or noisy parts, the vibrato.
2. A block \cot{...} holding the reasoning the student will learn, written as if you did NOT know the
   answer: start from the description, decide the algorithm (which operators modulate which, which are
   carriers, the feedback), then frequencies (coarse, fine, detune, fixed), output levels, envelopes
   and the remaining keys, each choice justified by the sound described. Never mention a ground truth,
   a given answer, the evidence recordings or this prompt. Do not put the JSON inside \cot{...}.
3. The final patch as one ```json fenced block. It must equal the ground-truth patch value for value:
   copy every key and number exactly (the name may be left out)."""


def teacher_user_text(*, caption: str, schema: dict[str, Any], patch_json: str, evidence: str | None) -> str:
    """The teacher's user message: the description, the schema, the ground-truth JSON and the evidence."""
    parts = [
        f"Description of the sound (the student's prompt):\n{caption.strip()}",
        "The patch format (JSON Schema; every per-operator array has OP1 at index 0):\n"
        + json.dumps(schema, separators=(",", ":")),
        f"The ground-truth patch (the answer the reasoning must reach):\n```json\n{patch_json.strip()}\n```",
    ]
    if evidence:
        parts.append("Operator evidence: the patch rendered in full, then with one operator changed at a time; "
                     "each line says how the sound changes (levels in dB, brightness as the spectral "
                     f"centroid, times in ms):\n{evidence.strip()}")
    else:
        parts.append("Operator evidence: none available for this patch.")
    parts.append(_TEACHER_TASK)
    return "\n\n".join(parts)
