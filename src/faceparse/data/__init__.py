"""Data stages: synthetic faces, dataset layouts, CelebAMask-HQ conversion, validate, flip, stats.

May import: the ground floor (records, labels, parallel). No torch, no mmseg: the data steps run
in the light ``data`` environment.
"""
