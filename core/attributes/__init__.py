"""Person attributes: schema, Gemini and zero-shot providers, multi-view merge, audit.

- :mod:`.schema`: the pydantic schema of one person
- :mod:`.gemini`: :func:`~.gemini.generate_attributes` with Gemini (google-genai)
- :mod:`.zero_shot`: :func:`~.zero_shot.zero_shot_attributes` with the image-text matcher, offline
- :mod:`.merge`: :func:`~.merge.merge_attributes` per identity
- :mod:`.audit`: :func:`~.audit.audit_attributes` against Market-1501 ground truth
"""
