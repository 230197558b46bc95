# The seed solution, ported to mmsegmentation 1.x: ConvNeXt-XL (ImageNet-22k,
# drop path 0.4, layer scale 1.0, all 4 stages) + UPerNet, CE (class weights)
# + Lovasz (2.0) on both heads, AdamW 8e-5 with stage-wise layer decay 0.9,
# fp16, batch 4 (per GPU: the seed used one), 160k iterations.
# The recipe, in full: docs/seed-recipe.md.
_base_ = [
    './_base_/models/upernet_timm.py',
    './_base_/faceparse_dataset.py',
    './_base_/runtime.py',
    './_base_/schedule_160k.py',
]
crop_size = (512, 512)
num_classes = 19
norm_cfg = dict(type='SyncBN', requires_grad=True)  # the auxiliary head's, as the base's UPerHead
class_weight = [0.95, 0.95, 0.95, 1, 1, 1, 1.05, 1.05, 1.05, 1.05, 1, 1, 1, 0.95, 1.05, 1.5, 2, 1, 1.05]
# The seed's CrossEntropyLoss(class_weight=...): mmseg 1.x's indexes the class
# weights with the ignored label 255 (RandomRotate's padding) and fails; this
# one gives the same value on labels without 255 and skips 255 in its mean.
ce = dict(type='ClassWeightedCrossEntropyLoss', class_weight=class_weight, loss_name='loss_ce')
# mmseg 1.x LovaszLoss: per_image=False (the batch as one image) requires reduction='none'.
lovasz = dict(type='LovaszLoss', loss_type='multi_class', classes='present', per_image=False,
              reduction='none', loss_weight=2.0, loss_name='loss_lovasz')


model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        model_name='convnext_xlarge.fb_in22k',
        # ImageNet-22k weights from the HF hub; offline: pretrained_file='/path/to/weights'
        pretrained=True,
        drop_path_rate=0.4,
        ls_init_value=1.0,
        out_indices=(0, 1, 2, 3),
        out_norms=True),
    decode_head=dict(
        in_channels=[256, 512, 1024, 2048],
        channels=512,
        dropout_ratio=0.1,
        loss_decode=[
            dict(ce, loss_weight=1.0),
            lovasz,
        ]),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=[
            dict(ce, loss_weight=0.4),
            lovasz,
        ]))
