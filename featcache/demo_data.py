"""A labelled speech corpus synthesized offline, for demos and tests.

Every utterance is spoken by espeak-ng (and flite, when installed) with one of several voices
(``speaker``), one of three prosody styles made from pitch, speed and loudness (``style``, a
paralinguistic class), in English or Spanish (``language``, espeak voices speak both; flite voices
English only), reading a sentence written for this project (``text``). Splits are drawn per speaker
(70/15/15). The same seed gives byte-identical audio and manifest on the same machine.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from featcache.atomic import replacing, write_atomic
from featcache.errors import ConfigError, DependencyError
from featcache.registry import Registry

if TYPE_CHECKING:
    import numpy as np

ENGINES = Registry("speech engine", "--engine")
ENGINES.register("espeak", "espeak-ng (required), English and Spanish voices")
ENGINES.register("flite", "used when installed, English voices")

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker: an engine, its voice or variant, and a base pitch/speed."""

    speaker: str
    engine: str  # an ENGINES name
    voice: str  # espeak variant (combined with a language) or flite voice name
    gender: str
    pitch: int  # espeak 0-99, or flite mean F0 in Hz
    speed: float  # espeak words/minute, or flite duration stretch (1 = normal)


ESPEAK_VOICES = (
    Voice("spk-m1", "espeak", "m1", "m", 38, 165),
    Voice("spk-m3", "espeak", "m3", "m", 30, 150),
    Voice("spk-andy", "espeak", "Andy", "m", 45, 175),
    Voice("spk-f2", "espeak", "f2", "f", 60, 160),
    Voice("spk-f4", "espeak", "f4", "f", 68, 170),
    Voice("spk-annie", "espeak", "Annie", "f", 55, 155),
)
FLITE_VOICES = (
    Voice("spk-slt", "flite", "slt", "f", 170, 1.0),
    Voice("spk-rms", "flite", "rms", "m", 105, 1.0),
    Voice("spk-awb", "flite", "awb", "m", 115, 1.0),
)
ESPEAK_LANGUAGES = {"en": "en-us", "es": "es"}

# style -> (pitch offset, speed factor, amplitude factor): excited speech is higher, faster and
# louder; calm speech lower, slower and softer.
STYLES = {
    "neutral": (0, 1.00, 1.0),
    "excited": (22, 1.30, 1.6),
    "calm": (-14, 0.78, 0.5),
}

SENTENCES = {
    "en": (
        "The lighthouse keeper counted every ship that passed before dawn.",
        "Please leave the blue umbrella beside the kitchen door.",
        "Our train to the mountains leaves at half past seven.",
        "She painted the old fence a bright shade of green.",
        "Nobody expected the small river to flood the valley.",
        "He keeps a notebook of birds he has seen this year.",
        "The bakery on the corner sells warm bread every morning.",
        "Turn left at the library and walk two more blocks.",
        "A quiet wind moved through the tall summer grass.",
        "The museum opens its new exhibition on Friday evening.",
        "My grandmother still writes letters with a fountain pen.",
        "Seven students built a tiny robot for the science fair.",
        "The orchestra tuned their instruments before the concert.",
        "Fresh snow covered the roofs of the sleeping village.",
        "We measured the garden and planted three rows of beans.",
        "The pilot announced a short delay because of fog.",
        "Could you bring the maps and the flashlight tonight?",
        "An old clock ticked loudly in the empty hallway.",
        "They repaired the bridge before the autumn rains arrived.",
        "The chef tasted the soup and added a pinch of salt.",
        "Every evening the fishermen mend their nets by the harbour.",
        "The children laughed when the puppy chased its own tail.",
        "A letter arrived from an island far across the sea.",
        "The engineers tested the new pump for twelve hours.",
    ),
    "es": (
        "El panadero abre su tienda antes de que salga el sol.",
        "Mañana visitaremos el museo de ciencias con mis primos.",
        "La biblioteca del pueblo tiene libros muy antiguos.",
        "Mi hermana aprendió a tocar la guitarra este verano.",
        "El tren hacia la costa sale a las ocho y media.",
        "Las montañas estaban cubiertas de nieve en diciembre.",
        "Por favor, cierra la ventana porque hace mucho viento.",
        "El gato duerme todas las tardes junto a la chimenea.",
        "Compramos naranjas y pan fresco en el mercado.",
        "Los pescadores volvieron al puerto con las redes llenas.",
        "La profesora explicó la lección con mucha paciencia.",
        "Un reloj viejo sonaba en el pasillo vacío.",
        "Mi abuelo cultiva tomates y pimientos en su huerto.",
        "El concierto empezó tarde por culpa de la lluvia.",
        "Encontramos un mapa antiguo dentro de una caja de madera.",
        "Los niños construyeron un castillo de arena en la playa.",
        "La cocinera probó la sopa y añadió un poco de sal.",
        "El puente nuevo une los dos barrios de la ciudad.",
        "Esta noche veremos las estrellas desde la colina.",
        "El médico llegó temprano para revisar a los pacientes.",
        "Las flores del jardín se abren con el primer calor.",
        "Un barco pequeño cruzó el lago al amanecer.",
        "Mi vecino repara bicicletas en su garaje.",
        "La carta llegó desde una isla muy lejana.",
    ),
}


@dataclass(frozen=True)
class DemoDataConfig:
    """What `featcache demo-data` makes; stored beside the corpus as ``demo_data.json``."""

    utterances: int = 240
    seed: int = 0
    engines: tuple[str, ...] = tuple(ENGINES)


def available_voices(engines: tuple[str, ...]) -> list[Voice]:
    """Voices of the requested engines that are installed; espeak-ng is required."""
    if shutil.which("espeak-ng") is None:
        raise DependencyError(
            "espeak-ng is not installed; install it with `sudo apt-get install espeak-ng` "
            "(Debian/Ubuntu) or `brew install espeak-ng` (macOS), then run demo-data again"
        )
    voices = list(ESPEAK_VOICES) if "espeak" in engines else []
    if "flite" in engines and shutil.which("flite"):
        voices += FLITE_VOICES
    if not voices:
        raise ConfigError(f"no voices for engines {engines}; use espeak and/or flite")
    return voices


def make_demo_corpus(
    out: str | Path,
    utterances: int = 240,
    seed: int = 0,
    engines=tuple(ENGINES),
    progress=None,
) -> Path:
    """Synthesize the corpus into ``out`` (``wav/*.wav`` + ``manifest.jsonl``); return the manifest.

    Idempotent: a folder already holding the same corpus is left as it is; a folder holding
    anything else is refused (pass a new folder). The manifest is written last, so an
    interrupted run leaves no manifest and simply runs again.
    """
    from featcache.manifest import write_manifest

    if utterances < 6:
        raise ConfigError(f"--utterances must be at least 6 (one per voice), got {utterances}")
    config = DemoDataConfig(utterances, seed, tuple(engines))
    voices = available_voices(config.engines)
    out = Path(out)
    manifest_path, config_path = out / "manifest.jsonl", out / "demo_data.json"
    wanted = {
        **asdict(config),
        "engines": list(config.engines),
        "voices": [v.speaker for v in voices],
    }
    if manifest_path.exists():
        if config_path.exists() and json.loads(config_path.read_text()) == wanted:
            return manifest_path
        raise ConfigError(
            f"{out} already holds a different corpus; choose a new folder or delete it"
        )
    if out.exists() and any(p.name not in ("wav", "demo_data.json") for p in out.iterdir()):
        raise ConfigError(f"{out} is not empty; choose a new folder for the demo corpus")
    if config_path.exists() and json.loads(config_path.read_text()) != wanted:
        shutil.rmtree(out / "wav", ignore_errors=True)  # an interrupted run with other settings
    (out / "wav").mkdir(parents=True, exist_ok=True)
    write_atomic(config_path, json.dumps(wanted, indent=1))

    records = plan_corpus(voices, utterances, seed)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        for i, rec in enumerate(records):
            wav = synthesize(
                rec["_voice"], rec["text"], rec["language"], rec["style"], rec["_jitter"], Path(tmp)
            )
            _write_wav(out / rec["audio"], wav)
            rec["duration"] = round(len(wav) / SAMPLE_RATE, 4)
            if progress is not None:
                progress(i + 1, len(records))
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]
    return write_manifest(clean, manifest_path)


def plan_corpus(voices: list[Voice], utterances: int, seed: int) -> list[dict]:
    """Decide who says what, how, and in which split; deterministic in ``seed``."""
    rng = random.Random(seed)
    combos = [
        (v, style, lang)
        for v in voices
        for style in STYLES
        for lang in (("en", "es") if v.engine == "espeak" else ("en",))
    ]
    rng.shuffle(combos)
    # cycle through speakers so every speaker gets about the same number of utterances
    by_voice = {v.speaker: [c for c in combos if c[0] is v] for v in voices}
    order = [by_voice[v.speaker] for v in voices]
    records, counts = [], {v.speaker: 0 for v in voices}
    for i in range(utterances):
        pool = order[i % len(order)]
        voice, style, lang = pool[(i // len(order)) % len(pool)]
        counts[voice.speaker] += 1
        records.append(
            {
                "id": f"{voice.speaker}-{counts[voice.speaker]:04d}",
                "audio": f"wav/{voice.speaker}-{counts[voice.speaker]:04d}.wav",
                "speaker": voice.speaker,
                "gender": voice.gender,
                "style": style,
                "language": lang,
                "text": rng.choice(SENTENCES[lang]),
                "engine": voice.engine,
                "_voice": voice,
                "_jitter": (rng.uniform(-3, 3), rng.uniform(0.96, 1.04)),
            }
        )
    for speaker in counts:  # 70/15/15 per speaker
        mine = [r for r in records if r["speaker"] == speaker]
        rng.shuffle(mine)
        n_dev = n_test = max(1, round(0.15 * len(mine)))
        for j, r in enumerate(mine):
            r["split"] = "dev" if j < n_dev else "test" if j < n_dev + n_test else "train"
    return records


def synthesize(voice: Voice, text: str, language: str, style: str, jitter, tmp: Path) -> np.ndarray:
    """One utterance as float32 mono 16 kHz."""
    import numpy as np

    from featcache.audio import load_audio

    pitch_off, speed_f, amp_f = STYLES[style]
    d_pitch, d_speed = jitter
    path = tmp / "utt.wav"
    if voice.engine == "espeak":
        cmd = [
            "espeak-ng",
            "-v", f"{ESPEAK_LANGUAGES[language]}+{voice.voice}",
            "-p", str(int(np.clip(voice.pitch + pitch_off + d_pitch, 0, 99))),
            "-s", str(int(voice.speed * speed_f * d_speed)),
            "-a", str(int(np.clip(100 * amp_f, 10, 200))),
            "-w", str(path),
            text,
        ]  # fmt: skip
    else:
        cmd = [
            "flite",
            "-voice", voice.voice,
            "--setf", f"duration_stretch={1.0 / (speed_f * d_speed):.3f}",
            "--setf", f"int_f0_target_mean={voice.pitch * (1 + (pitch_off + d_pitch) / 60):.1f}",
            "-t", text,
            "-o", str(path),
        ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not path.exists():
        raise DependencyError(f"{cmd[0]} failed for voice {voice.speaker}: {done.stderr.strip()}")
    wav = load_audio(path, sample_rate=SAMPLE_RATE)
    if voice.engine == "flite":  # flite has no loudness control: scale here
        wav = wav * amp_f
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def _write_wav(path: Path, wav: np.ndarray) -> None:
    import soundfile as sf

    with replacing(path) as tmp:  # soundfile writes by name
        sf.write(str(tmp), wav, SAMPLE_RATE, subtype="PCM_16", format="WAV")
