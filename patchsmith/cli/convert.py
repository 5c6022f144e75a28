"""``patchsmith convert``: convert voices between .syx, patch JSON and the source research's CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError, Source, load_source, note, print_notes, progress, slug, write_atomic, write_texts

# The columns of the source research's DX7_*.csv files, in their order.
SOURCE_CSV_COLUMNS = ("", "index", "patch_number", "name", "patch_data", "file_path", "syx_file",
                      "has_fixed_freqs", "id", "wav_path", "inaudible")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``convert`` and its options."""
    c = sub.add_parser("convert", help="convert between .syx, patch .json and source-research .csv",
                       description="Convert voices. The output type follows OUT: .syx (one voice: a single-voice "
                                   "dump; several: a 32-voice bank), .json (one patch, or a JSON list), .csv (rows in "
                                   "the source research's format) or a folder (one patch .json per voice). Topologies "
                                   "that are not one of the 32 DX7 algorithms cannot become sysex.")
    c.add_argument("input", metavar="IN")
    c.add_argument("output", metavar="OUT")
    c.add_argument("--bank", action="store_true", help="write a 32-voice bank even for a single voice")
    c.set_defaults(func=run)
    return c


def _source_csv_text(source: Source) -> str:
    """Rows in the source research's CSV layout (``patch_data`` a Python-literal dict, OP6-first)."""
    import csv
    import io

    from ..schema.source_research import SourceResearchError, export_source_dict

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SOURCE_CSV_COLUMNS)
    problems = []
    for i, voice in enumerate(progress(source.voices, "convert")):
        try:
            data = export_source_dict(voice.patch)
        except SourceResearchError as err:
            problems.append(f"{voice.label}: {err}")
            continue
        number = voice.number - 1 if source.kind == "syx" else i  # the source research counts bank voices from 0
        has_fixed = bool(data.get("has_fixed_freq"))
        writer.writerow([i, i, number, voice.patch.name or "", _python_literal(data), str(source.path),
                         source.path.name, has_fixed, i, "", ""])
    if problems:
        raise CliError(problems)
    return buffer.getvalue()


def _python_literal(data: dict[str, Any]) -> str:
    """A dict in the source research's printed style: one key per line, matrix rows on their own lines."""
    lines = ["{"]
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], list):
            rows = ",\n".join(f"\t\t{row!r}" for row in value)
            lines.append(f"    {key!r}: [\n{rows}\n    ],")
        else:
            lines.append(f"    {key!r}: {value!r},")
    return "\n".join(lines + ["}"])


def _dropped_by_source_format(patch: Any) -> list[str]:
    from ..schema.patch import Patch

    defaults = Patch.neutral_voice_defaults()
    d = patch.model_dump()
    return [k for k, v in defaults.items() if d[k] != v]


def run(args: argparse.Namespace) -> int:
    """Convert voices between .syx, patch JSON and the source research's CSV."""
    source = load_source(args.input)
    print_notes(source)
    out = Path(args.output)
    patches = [v.patch for v in source.voices]
    suffix = out.suffix.lower()
    if suffix == ".syx":
        data = sysex_bytes(source, bank=args.bank)
        write_atomic(out, data)
        what = "32-voice bank" if len(data) == 4104 else "single voice"
        print(f"wrote {out} ({what}, {len(patches)} voice{'s' if len(patches) != 1 else ''})")
    elif suffix == ".json":
        from ..schema.compact import dumps_compact

        texts = [dumps_compact(p) for p in progress(patches, "convert")]
        text = texts[0] if len(texts) == 1 else "[\n" + ",\n".join(texts) + "\n]"
        write_atomic(out, text + "\n")
        print(f"wrote {out} ({len(patches)} voice{'s' if len(patches) != 1 else ''}"
              f"{', a JSON list' if len(texts) > 1 else ''})")
    elif suffix == ".csv":
        dropped = sorted({k for p in patches for k in _dropped_by_source_format(p)})
        write_atomic(out, _source_csv_text(source))
        if dropped:
            note("the source-research format holds only the 128-number core; dropped " + ", ".join(dropped))
        print(f"wrote {out} ({len(patches)} row{'s' if len(patches) != 1 else ''} in the source-research format)")
    elif suffix == "":
        from ..schema.compact import dumps_compact

        files = {f"{v.number:02d}-{slug(v.patch.name or '')}.json": dumps_compact(v.patch) + "\n"
                 for v in progress(source.voices, "convert")}
        write_texts(out, files)
        print(f"wrote {len(files)} patch file{'s' if len(files) != 1 else ''} into {out}/")
    else:
        raise CliError(f"{out}: unknown output type {suffix!r}; allowed .syx, .json, .csv or a folder (no extension)")
    return EXIT_OK


def sysex_bytes(source: Source, bank: bool) -> bytes:
    """A single-voice message for one voice (unless ``bank``), else a 32-voice bank."""
    from ..synth.sysex import NotRepresentableError, SysexError, patch_to_vced, write_vced, write_vmem

    problems = []
    for voice in source.voices:
        try:
            patch_to_vced(voice.patch)
        except (NotRepresentableError, SysexError) as err:
            problems.append(f"{voice.label}: {err}")
    if len(source.voices) > 32:
        problems.append(f"{source.path}: {len(source.voices)} voices, but a DX7 bank holds 32; "
                        "pick one with SOURCE:N or split the source")
    if problems:
        raise CliError(problems)
    patches = [v.patch for v in source.voices]
    if len(patches) == 1 and not bank:
        return write_vced(patches[0])
    return write_vmem(patches)
