"""The synthetic face generator (data_layout: synthetic): faces.py draws head-and-shoulders
photos with their 19-class masks; canvas.py paints a mask and a material map with the same
geometry and renders the photo from it; shapes.py holds the 2-D geometry; colours.py the
(overlapping) colour samplers."""

from faceparse.data.synthetic.faces import generate_dataset, generate_face

__all__ = ["generate_dataset", "generate_face"]
