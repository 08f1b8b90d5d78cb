"""The matcher as a FiftyOne model: image embeddings plus text-prompt embeddings.

A brain similarity index built with this model (through the zoo name
:data:`core.contract.MATCHER_ZOO_MODEL`, see :mod:`core.models.zoo`) can re-create
it by name, so the index answers text queries in a new process and in the
App's built-in similarity search.

Example::

    import fiftyone.zoo as foz
    from core import zoo
    zoo.register_model_source()
    model = foz.load_zoo_model("person-finder-matcher", name_or_path="google/siglip-base-patch16-224")
    dataset.compute_embeddings(model, embeddings_field="siglip")
"""

from __future__ import annotations

import fiftyone.core.models as fom

from .. import defaults


class MatcherModel(fom.Model, fom.EmbeddingsMixin, fom.PromptMixin):
    """FiftyOne adapter over :class:`core.models.matcher.ImageTextMatcher`."""

    def __init__(self, matcher):
        self.matcher = matcher
        self._last = None

    @property
    def media_type(self):
        return "image"

    @property
    def ragged_batches(self):
        return True  # crops of any size; the processor resizes them

    @property
    def transforms(self):
        return None

    @property
    def preprocess(self):
        return False

    @preprocess.setter
    def preprocess(self, value):
        pass

    @property
    def has_embeddings(self):
        return True

    @property
    def can_embed_prompts(self):
        return True

    def embed(self, arg):
        return self.embed_all([arg])[0]

    def embed_all(self, args):
        self._last = self.matcher.embed_images(list(args))
        return self._last

    def get_embeddings(self):
        if self._last is None:
            raise ValueError("no images have been embedded yet")
        return self._last

    def predict(self, arg):
        return self.predict_all([arg])[0]

    def predict_all(self, args):
        # Embedding-only model: FiftyOne stores embeddings, there are no labels.
        self.embed_all(args)
        return [None] * len(self._last)

    def embed_prompt(self, arg):
        return self.embed_prompts([arg])[0]

    def embed_prompts(self, args):
        return self.matcher.embed_texts(list(args))


def load_matcher_model(name_or_path=defaults.MATCHER_MODEL, device=None, batch_size=defaults.MATCHER_BATCH_SIZE):
    """Load the matcher wrapped as a FiftyOne model (what the zoo entry returns)."""
    from .matcher import load_matcher

    return MatcherModel(load_matcher(name_or_path, device=device, batch_size=batch_size))
