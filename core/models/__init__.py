"""Model layer: image-text matcher, person detector, DINOv2 embedder (imported lazily)."""
