"""Inference on every model a user can hold, through one protocol.

`SegmentationModel` (deeplab.inference.segmentation_model) is the protocol: labels,
probabilities where the source has them, class names and colour map, the output stride and
crop it runs at. `CheckpointModel` implements it for our Keras network (a checkpoint or a
zoo entry); `deeplab.export.runtimes` for every exported format. `open_model` (in
deeplab.inference.opening) gives the right one for a zoo name or a path; predict.py, eval.py,
vis.py, `deeplab.load` and the zoo's verification all run models through it.
"""
