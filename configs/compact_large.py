# CompactFaceNet at GPU widths: the same network file and the same recipe as configs/compact.py
# (the demo's, sized for 2 CPU cores), with the rest of the budget spent where the maps are large:
# a 3x3 convolution at full size before the stem, 32 channels at 1/2, two convolutions per
# decoder stage from 1/8 up, and a last decoder stage at full size that the classifier reads
# (instead of the sub-pixel classifier at 1/2). 1,693,203 parameters (< 1,821,085), 2.82 GFLOPs
# per 192x192 crop (compact.py: 0.65; mmseg's small UNet: 3.65). configs/compact_512.py trains it
# at full size on a GPU; at the demo's size it is the bench's row (bench/bench_compact.py).
_base_ = ['./compact.py']
model = dict(backbone=dict(full_res=16, stem_convs=2, detail=(32, 64, 96), decoder=(96, 64, 64, 32),
                           decoder_convs=(1, 2, 2, 2), full_res_decoder=True))
