"""Data stages: synthetic faces, dataset layouts, CelebAMask-HQ conversion, validate, flip, stats."""
