"""faceparse: a reproducible face-parsing pipeline (CelebAMask-HQ, 19 classes)."""
