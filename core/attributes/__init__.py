"""Person attributes: schema, Gemini and zero-shot providers, multi-view merge, audit.

- :mod:`.schema`: the pydantic schema of one person
- :mod:`.gemini`: :func:`~.gemini.generate_attributes` with Gemini (google-genai)
- :mod:`.zero_shot`: :func:`~.zero_shot.zero_shot_attributes` with the image-text matcher, offline
- :mod:`.merge`: :func:`~.merge.merge_attributes` per identity
- :mod:`.audit`: :func:`~.audit.audit_attributes` against Market-1501 ground truth
"""

from .. import defaults

PROVIDERS = ("gemini", "zero-shot")


def generate_person_attributes(samples, provider=defaults.ATTRIBUTES_PROVIDER, **kwargs):
    """Generate per-view attributes with ``provider`` ("gemini" or "zero-shot"); ``kwargs`` go to it.

    Example::

        from person_finder.core.attributes import generate_person_attributes
        generate_person_attributes(dataset, provider="zero-shot", matcher="google/siglip-base-patch16-224")
    """
    if provider == "gemini":
        from .gemini import generate_attributes

        return generate_attributes(samples, **kwargs)
    if provider == "zero-shot":
        from .zero_shot import zero_shot_attributes

        return zero_shot_attributes(samples, **kwargs)
    raise ValueError(f"provider={provider!r}; use one of {PROVIDERS}")
