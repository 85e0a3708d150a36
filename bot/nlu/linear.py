"""Deterministic linear classifiers for the intent and the policy topic.

Why not DIET: a DIET model trained on one machine scored intent macro-F1 0.955
on the held-out split and 0.936 when trained on another (AVX-512, other oneDNN
kernels, other thread counts), so the gate passed or failed with the CPU. The
classifiers here are linear support vector machines (scikit-learn's LinearSVC,
liblinear: plain C doubles, no BLAS, no threads) over sparse TF-IDF features
that this module computes itself:

- ``w:`` the words of Rasa's jieba tokenizer (with the domain dictionary);
- ``c:`` character n-grams (1–2) of each whitespace-separated chunk, which carry
  typos and unknown words;
- ``p:`` the pinyin of the characters, single and in pairs (pypinyin, whose
  data ships in the package), which carries homophones and voice-recognition
  errors (优带证 → you dai zheng, 报道 → bao dao);
- ``r:`` the regular expressions of the training data (nlu_data/nlu/regex.yml).

Each block is TF-IDF weighted (sublinear tf, smoothed idf) and L2-normalised,
as scikit-learn's TfidfVectorizer does. The same text gives the same features
and the same weights on any machine, so training and prediction are the same
everywhere; `benchmarks/nlu_stability.py` measures it.

Confidences are a softmax over the decision values, with a temperature chosen
by evaluation (`temperature`), so the FallbackClassifier's threshold has the
usual meaning. Models are stored as JSON and NumPy arrays: no pickle.

Two components share the featurisation:
- ``LinearIntentClassifier``: sets ``intent`` and ``intent_ranking``;
- ``LinearResponseSelector``: for the retrieval intent (``faq``), sets
  ``response_selector`` exactly as Rasa's ResponseSelector does, so that
  Rasa's ``utter_faq`` retrieval action and ``rasa test nlu`` work unchanged.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Sequence, Text, Tuple

import numpy as np
from scipy.sparse import csr_matrix, hstack

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

BLOCKS = ("w", "c", "p", "r")
POLICY_TOPICS = "policy_topics"  # the topics of a long message's several questions
_HAN = re.compile(r"[\u3400-\u9fff]")


class Featurizer:
    """Text → sparse TF-IDF vector, fitted on the training texts."""

    def __init__(
        self,
        char_ngrams: Tuple[int, int] = (1, 3),
        pinyin: bool = True,
        patterns: Optional[Sequence[Dict[str, str]]] = None,
    ) -> None:
        self.char_ngrams = tuple(char_ngrams)
        self.pinyin = pinyin
        self.patterns = list(patterns or [])
        self._compiled = [(p["name"], re.compile(p["pattern"])) for p in self.patterns]
        self.vocabulary: Dict[str, Dict[str, int]] = {block: {} for block in BLOCKS}
        self.idf: Dict[str, np.ndarray] = {block: np.zeros(0) for block in BLOCKS}

    # -- the features of one text -------------------------------------------------
    def terms(self, text: str, words: Iterable[str]) -> Dict[str, Counter]:
        found: Dict[str, Counter] = {block: Counter() for block in BLOCKS}
        found["w"].update(word for word in words if word.strip())
        low, high = self.char_ngrams
        for chunk in text.lower().split():
            padded = f" {chunk} "
            for n in range(low, high + 1):
                found["c"].update(padded[i : i + n] for i in range(len(padded) - n + 1))
        if self.pinyin:
            syllables = _pinyin(text)
            found["p"].update(syllables)
            found["p"].update(f"{a}_{b}" for a, b in zip(syllables, syllables[1:]))
        for name, pattern in self._compiled:
            if pattern.search(text):
                found["r"][name] += 1
        return found

    # -- fitting and transforming -------------------------------------------------
    def fit_transform(self, documents: Sequence[Dict[str, Counter]]) -> csr_matrix:
        n = len(documents)
        for block in BLOCKS:
            frequency: Counter = Counter()
            for document in documents:
                frequency.update(document[block].keys())
            # Sorted, so the column order does not depend on dict or hash order.
            terms = sorted(frequency)
            self.vocabulary[block] = {term: index for index, term in enumerate(terms)}
            # math.log (one scalar libm call), not NumPy's vectorised log, whose SIMD
            # kernel is chosen by the CPU.
            self.idf[block] = np.array([math.log((1.0 + n) / (1.0 + frequency[term])) + 1.0 for term in terms],
                                       dtype=np.float64)
        return self.transform(documents)

    def transform(self, documents: Sequence[Dict[str, Counter]]) -> csr_matrix:
        return hstack([self._block(documents, block) for block in BLOCKS], format="csr")

    def _block(self, documents: Sequence[Dict[str, Counter]], block: str) -> csr_matrix:
        vocabulary, idf = self.vocabulary[block], self.idf[block]
        data: List[float] = []
        indices: List[int] = []
        indptr = [0]
        for document in documents:
            row = sorted(
                (vocabulary[term], (1.0 + math.log(count)) * idf[vocabulary[term]])
                for term, count in document[block].items()
                if term in vocabulary
            )
            norm = math.sqrt(sum(value * value for _, value in row)) or 1.0
            indices.extend(index for index, _ in row)
            data.extend(value / norm for _, value in row)
            indptr.append(len(indices))
        return csr_matrix((data, indices, indptr), shape=(len(documents), max(len(vocabulary), 1)))

    # -- storage ------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return {
            "char_ngrams": list(self.char_ngrams),
            "pinyin": self.pinyin,
            "patterns": self.patterns,
            "vocabulary": {block: sorted(v, key=v.get) for block, v in self.vocabulary.items()},
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any], idf: Dict[str, np.ndarray]) -> "Featurizer":
        featurizer = cls(tuple(data["char_ngrams"]), data["pinyin"], data["patterns"])
        for block in BLOCKS:
            featurizer.vocabulary[block] = {term: i for i, term in enumerate(data["vocabulary"][block])}
            featurizer.idf[block] = idf[block]
        return featurizer


def _pinyin(text: str) -> List[str]:
    """Toneless pinyin of the Chinese characters; other characters are skipped."""
    from pypinyin import lazy_pinyin

    return [syllable for syllable in lazy_pinyin("".join(_HAN.findall(text)))]


def _words(message: Message) -> List[str]:
    return [token.text for token in message.get(TOKENS_NAMES[TEXT]) or []]


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class LinearModel:
    """The featurizer and a linear SVM: fit, score, save, load."""

    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config
        self.featurizer: Optional[Featurizer] = None
        self.classes: List[str] = []
        self.coef = np.zeros((0, 0))
        self.intercept = np.zeros(0)

    def fit(self, messages: Sequence[Message], labels: Sequence[str], patterns) -> None:
        from sklearn.svm import LinearSVC

        self.featurizer = Featurizer(
            tuple(self.config["char_ngrams"]), bool(self.config["pinyin"]), patterns
        )
        documents = [self.featurizer.terms(m.get(TEXT), _words(m)) for m in messages]
        X = self.featurizer.fit_transform(documents)
        self.classes = sorted(set(labels))
        if len(self.classes) < 2:
            # One label: nothing to separate; it is always the answer.
            self.coef = np.zeros((1, X.shape[1]))
            self.intercept = np.ones(1)
            return
        svm = LinearSVC(
            C=float(self.config["C"]),
            class_weight="balanced",
            random_state=int(self.config["random_seed"]),
            max_iter=10000,
        )
        svm.fit(X, list(labels))
        assert list(svm.classes_) == self.classes
        coef, intercept = svm.coef_, svm.intercept_
        if len(self.classes) == 2:
            coef = np.vstack([-coef[0], coef[0]])
            intercept = np.array([-intercept[0], intercept[0]])
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)

    def probabilities(self, messages: Sequence[Message]) -> np.ndarray:
        assert self.featurizer is not None
        documents = [self.featurizer.terms(m.get(TEXT) or "", _words(m)) for m in messages]
        X = self.featurizer.transform(documents)
        scores = np.asarray(X @ self.coef.T) + self.intercept
        if len(self.classes) == 1:
            return np.ones((len(messages), 1))
        return softmax(scores, float(self.config["temperature"]))

    def save(self, model_storage: ModelStorage, resource: Resource, extra: Dict[str, Any]) -> None:
        assert self.featurizer is not None
        with model_storage.write_to(resource) as directory:
            meta = {"classes": self.classes, "featurizer": self.featurizer.to_dict(), **extra}
            (directory / "linear.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            np.savez(
                directory / "linear.npz",
                coef=self.coef,
                intercept=self.intercept,
                **{f"idf_{block}": self.featurizer.idf[block] for block in BLOCKS},
            )

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource) -> Tuple["LinearModel", Dict[str, Any]]:
        model = cls(config)
        with model_storage.read_from(resource) as directory:
            meta = json.loads((directory / "linear.json").read_text(encoding="utf-8"))
            arrays = np.load(directory / "linear.npz", allow_pickle=False)
            model.coef = arrays["coef"]
            model.intercept = arrays["intercept"]
            idf = {block: arrays[f"idf_{block}"] for block in BLOCKS}
        model.classes = meta["classes"]
        model.featurizer = Featurizer.from_dict(meta["featurizer"], idf)
        return model, meta


DEFAULTS = {
    "C": 0.5,
    "char_ngrams": [1, 2],
    "pinyin": True,
    "temperature": 0.2,
    "random_seed": 2026,
    "ranking_length": 10,
}


class _LinearComponent(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return dict(DEFAULTS)

    @classmethod
    def required_components(cls) -> List[type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn", "pypinyin"]

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource) -> None:
        self.config = {**DEFAULTS, **config}
        self.model = LinearModel(self.config)
        self._model_storage = model_storage
        self._resource = resource

    @classmethod
    def create(cls, config, model_storage, resource, execution_context: ExecutionContext):
        return cls(config, model_storage, resource)

    def _ranking(self, probabilities: np.ndarray) -> List[Tuple[str, float]]:
        order = np.argsort(-probabilities, kind="stable")
        return [(self.model.classes[i], float(probabilities[i])) for i in order]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(_LinearComponent, IntentClassifier):
    """The intent, from a linear SVM over words, character n-grams and pinyin."""

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(INTENT) and m.get(TEXT)]
        if examples:
            self.model.fit(examples, [m.get(INTENT) for m in examples], training_data.regex_features)
            self.model.save(self._model_storage, self._resource, {})
        return self._resource

    @classmethod
    def load(cls, config, model_storage, resource, execution_context, **kwargs):
        component = cls(config, model_storage, resource)
        try:
            component.model, _ = LinearModel.load(component.config, model_storage, resource)
        except (ValueError, FileNotFoundError):
            component.model = LinearModel(component.config)
        return component

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model.featurizer is None:
            return messages
        for message, probabilities in zip(messages, self.model.probabilities(messages)):
            ranking = self._ranking(probabilities)[: int(self.config["ranking_length"])]
            message.set(INTENT, {"name": ranking[0][0], "confidence": ranking[0][1]}, add_to_output=True)
            message.set(
                "intent_ranking",
                [{"name": name, "confidence": confidence} for name, confidence in ranking],
                add_to_output=True,
            )
        return messages


# A long message that asks several things ("第一，社保怎么接续？第二，优待证怎么办？…"):
# its questions, one by one. A clause is a question when it ends in a question mark or
# asks with a question word.
_CLAUSE_END = re.compile(r"[^。！？!?；;\n]+[。！？!?；;\n]*")
_ASKS = re.compile(r"[？?]|吗|呢|怎么|怎样|如何|能不能|能否|可不可以|是否|有没有|哪些|哪里|哪儿|什么|多少|几")


def question_clauses(message: Message) -> List[Message]:
    """The message's questions as messages of their own (text and the jieba tokens
    inside each), for long messages that ask several things."""
    text = message.get(TEXT) or ""
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    clauses = []
    for match in _CLAUSE_END.finditer(text):
        clause = match.group().strip()
        if len(_HAN.findall(clause)) < 4 or not _ASKS.search(clause):
            continue
        inside = [t for t in tokens if t.start >= match.start() and t.end <= match.end()]
        clauses.append(Message(data={TEXT: clause, TOKENS_NAMES[TEXT]: inside}))
    return clauses


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearResponseSelector(_LinearComponent):
    """The policy topic of a retrieval intent (``faq/<topic>``), in Rasa's
    ResponseSelector output format."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**DEFAULTS, "retrieval_intent": "faq", "several_min_chars": 60, "several_threshold": 0.6}

    def __init__(self, config, model_storage, resource) -> None:
        super().__init__({**self.get_default_config(), **config}, model_storage, resource)
        self.responses: Dict[str, Any] = {}
        self.retrieval_intents: List[str] = []

    def train(self, training_data: TrainingData) -> Resource:
        intent = self.config["retrieval_intent"]
        examples = [
            m for m in training_data.intent_examples
            if m.get(INTENT) == intent and m.get(INTENT_RESPONSE_KEY) and m.get(TEXT)
        ]
        if examples:
            self.retrieval_intents = sorted(training_data.retrieval_intents)
            keys = sorted({m.get(INTENT_RESPONSE_KEY) for m in examples})
            self.responses = {
                f"utter_{key}": training_data.responses.get(f"utter_{key}", []) for key in keys
            }
            self.model.fit(examples, [m.get(INTENT_RESPONSE_KEY) for m in examples], training_data.regex_features)
            self.model.save(
                self._model_storage,
                self._resource,
                {"responses": self.responses, "retrieval_intents": self.retrieval_intents},
            )
        return self._resource

    @classmethod
    def load(cls, config, model_storage, resource, execution_context, **kwargs):
        component = cls(config, model_storage, resource)
        try:
            component.model, meta = LinearModel.load(component.config, model_storage, resource)
            component.responses = meta.get("responses", {})
            component.retrieval_intents = meta.get("retrieval_intents", [])
        except (ValueError, FileNotFoundError):
            component.model = LinearModel(component.config)
        return component

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model.featurizer is None:
            return messages
        intent = self.config["retrieval_intent"]
        for message, probabilities in zip(messages, self.model.probabilities(messages)):
            ranking = self._ranking(probabilities)[: int(self.config["ranking_length"])]
            key, confidence = ranking[0]
            selector = dict(message.get("response_selector") or {})
            selector["all_retrieval_intents"] = self.retrieval_intents
            selector[intent] = {
                "response": {
                    "responses": self.responses.get(f"utter_{key}") or [{"text": key}],
                    "confidence": confidence,
                    "intent_response_key": key,
                    "utter_action": f"utter_{key}",
                },
                "ranking": [
                    {"id": index, "confidence": c, "intent_response_key": name}
                    for index, (name, c) in enumerate(ranking)
                ],
            }
            message.set("response_selector", selector, add_to_output=True)
            topics = self._several(message)
            if topics:
                message.set(POLICY_TOPICS, topics, add_to_output=True)
        return messages

    def _several(self, message: Message) -> List[Dict[str, Any]]:
        """For a long message: the topics of its questions, in the order asked, when
        there are two or more (``policy_topics``); else []."""
        if len(message.get(TEXT) or "") < int(self.config["several_min_chars"]):
            return []
        clauses = question_clauses(message)
        if len(clauses) < 2:
            return []
        topics: List[Dict[str, Any]] = []
        for clause, probabilities in zip(clauses, self.model.probabilities(clauses)):
            key, confidence = self._ranking(probabilities)[0]
            if confidence >= float(self.config["several_threshold"]) and key not in (
                    t["intent_response_key"] for t in topics):
                topics.append({"intent_response_key": key, "confidence": confidence, "text": clause.get(TEXT)})
        return topics if len(topics) >= 2 else []
