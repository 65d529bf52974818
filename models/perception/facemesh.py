"""Named landmark indices of the MediaPipe 468-point face mesh and its canonical 3D model.

The face pipeline gives, per frame, the 468 landmarks of MediaPipe's face mesh
(``face_landmark.onnx``): ``(468, 2)`` or ``(468, 3)`` arrays with x, y in frame pixels. The
rPPG and behaviour code only ever picks points through the names below, so that a change of
landmark model is a change of this file alone.

Sides follow MediaPipe's own naming (``FACEMESH_LEFT_EYE`` in
``mediapipe/python/solutions/face_mesh_connections.py``): *left* and *right* are the
**subject's** sides. On an unmirrored camera image the subject's right eye (33 ... 133) is on
the viewer's left.

The index sets were checked against the mesh topology (``FACEMESH_TESSELATION``, ``_LIPS``,
``_LEFT_EYE``, ``_RIGHT_EYE``, ``_LEFT_EYEBROW``, ``_RIGHT_EYEBROW``, ``_NOSE``) of MediaPipe
0.10 and against the canonical face model below: left/right sets are exact mirror images
(x -> -x) of each other, and the skin polygons contain no eye, brow, lip or nose-contour
point (``tests/unit/test_rppg_behaviour.py`` checks both).

The 3D coordinates are vertices of MediaPipe's canonical face model,
``mediapipe/modules/face_geometry/data/canonical_face_model.obj`` (Apache-2.0, The MediaPipe
Authors), whose vertex k is landmark k. Units are centimetres of an average adult face;
axes: x towards the subject's left (image right on a frontal face), y up, z out of the face
towards the camera.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 468

# --- Eyes: the six points of the eye aspect ratio (Soukupová & Čech 2016), ordered
# p1 (outer corner), p2, p3 (upper lid), p4 (inner corner), p5, p6 (lower lid), so that
# p2-p6 and p3-p5 are vertical pairs. The subject's right eye (33 ... 133) is the one on the
# viewer's left of an unmirrored image, and vice versa.
RIGHT_EYE_EAR: tuple[int, ...] = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR: tuple[int, ...] = (263, 387, 385, 362, 380, 373)
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_OUTER, LEFT_EYE_INNER = 263, 362
# Closed contours (upper lid outer -> inner, then lower lid inner -> outer).
RIGHT_EYE_CONTOUR: tuple[int, ...] = (33, 246, 161, 160, 159, 158, 157, 173, 133,
                                      155, 154, 153, 145, 144, 163, 7)
LEFT_EYE_CONTOUR: tuple[int, ...] = (263, 466, 388, 387, 386, 385, 384, 398, 362,
                                     382, 381, 380, 374, 373, 390, 249)

# --- Brows, outer -> inner. The upper and lower edges of each brow.
RIGHT_BROW_UPPER: tuple[int, ...] = (70, 63, 105, 66, 107)
RIGHT_BROW_LOWER: tuple[int, ...] = (46, 53, 52, 65, 55)
LEFT_BROW_UPPER: tuple[int, ...] = (300, 293, 334, 296, 336)
LEFT_BROW_LOWER: tuple[int, ...] = (276, 283, 282, 295, 285)

# --- Mouth.
UPPER_LIP_INNER = 13  # centre of the upper lip's inner edge
LOWER_LIP_INNER = 14  # centre of the lower lip's inner edge
MOUTH_RIGHT_CORNER = 61  # subject's right (viewer's left)
MOUTH_LEFT_CORNER = 291
INNER_LIPS: tuple[int, ...] = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308,
                               324, 318, 402, 317, 14, 87, 178, 88, 95)
OUTER_LIPS: tuple[int, ...] = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
                               375, 321, 405, 314, 17, 84, 181, 91, 146)

# --- Midline points.
FOREHEAD_TOP = 10  # top of the mesh, at the hairline
NASION = 168  # between the eyes
NOSE_TIP = 1
SUBNASALE = 2  # base of the nose, above the upper lip
CHIN = 152  # lowest point of the chin

# --- Nose points of MediaPipe's FACEMESH_NOSE: the midline from the nasion to the subnasale
# and the loop around the alae and nostrils (a set, not one outline). The cheek polygons must
# stay clear of them.
NOSE_CONTOUR: tuple[int, ...] = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327,
                                 294, 278, 344, 440, 275, 45, 220, 115, 48, 64)

# --- Skin polygons for rPPG, ordered around their boundary. Chosen where the skin is thin,
# well perfused and rarely covered: the forehead band between the hairline row (67-109-10-
# 338-297) and the row about 1.5 cm above the brows (69-108-151-337-299), and each cheek from
# below the lower-lid crease (117, 118) to the nasolabial region (205, 187), about 1 cm clear of
# the nose's ala and of the face's silhouette. Brows, eyes, nostrils and lips lie outside.
FOREHEAD_POLYGON: tuple[int, ...] = (67, 109, 10, 338, 297, 299, 337, 151, 108, 69)
RIGHT_CHEEK_POLYGON: tuple[int, ...] = (116, 117, 118, 101, 36, 205, 187, 123)
LEFT_CHEEK_POLYGON: tuple[int, ...] = (345, 346, 347, 330, 266, 425, 411, 352)
# --- Face oval, clockwise from the top of the forehead (MediaPipe's FACEMESH_FACE_OVAL).
FACE_OVAL: tuple[int, ...] = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288,
                              397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
                              172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
# Nostrils and alae: the loop of FACEMESH_NOSE below the nose bridge. Its hull is cut out of
# the skin that rPPG samples (dark nostrils, the highlight on the tip).
NOSTRILS: tuple[int, ...] = (98, 97, 2, 326, 327, 294, 278, 344, 440, 275, 45, 220, 115, 48,
                             64)
# What rPPG cuts out of the face oval: eyes, brows, lips and nostrils (models/perception/rppg.py).
NOT_SKIN: tuple[tuple[int, ...], ...] = (
    RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR,
    RIGHT_BROW_UPPER + RIGHT_BROW_LOWER[::-1], LEFT_BROW_UPPER + LEFT_BROW_LOWER[::-1],
    OUTER_LIPS, NOSTRILS,
)

# --- Head pose. Points that hardly move with expression (no lids, brows, lips, jaw) and that
# the landmark model places on the face rather than on its silhouette (which slides with yaw);
# they span the nose tip to the forehead and eye corners, so depth is well conditioned.
POSE_POINTS: tuple[int, ...] = (1, 2, 98, 327, 6, 168, 9, 151, 10, 33, 133, 362, 263)

# Canonical face model coordinates (cm) of every landmark named in this module except the
# outer lips, copied from canonical_face_model.obj (vertex k = landmark k).
CANONICAL_3D: dict[int, tuple[float, float, float]] = {
    1: (0.000000, -1.126865, 7.475604), 2: (0.000000, -2.089024, 6.058267),
    4: (0.000000, -0.463170, 7.586580), 5: (0.000000, 0.365669, 7.242870),
    6: (0.000000, 2.473255, 5.788627), 7: (-4.253081, 2.577646, 3.279702),
    9: (0.000000, 4.885979, 5.385258), 10: (0.000000, 8.261778, 4.481535),
    13: (0.000000, -3.994436, 5.219482), 14: (0.000000, -4.542400, 5.404754),
    19: (0.000000, -1.501095, 7.112196), 33: (-4.445859, 2.663991, 3.173422),
    36: (-2.844939, -0.720868, 4.433130), 45: (-0.496396, -0.475659, 7.440358),
    46: (-5.253307, 3.881582, 3.363159), 48: (-1.608635, -0.942516, 5.814193),
    52: (-3.734964, 4.508230, 4.550454), 53: (-4.588603, 4.302037, 4.048484),
    55: (-1.220941, 4.142165, 5.106035), 61: (-2.456206, -4.342621, 4.283884),
    63: (-4.985894, 4.802461, 3.751977), 64: (-1.592294, -1.257709, 5.456949),
    65: (-2.644548, 4.524654, 4.921559), 66: (-2.760292, 5.100971, 5.015990),
    67: (-3.523964, 8.005976, 3.729163), 69: (-3.063932, 6.566144, 4.529981),
    70: (-5.720968, 4.254584, 2.830852), 78: (-2.153084, -4.276322, 4.038093),
    80: (-1.469132, -4.036351, 4.604908), 81: (-1.024340, -3.989851, 4.926693),
    82: (-0.533422, -3.993222, 5.138202), 87: (-0.583218, -4.517982, 5.339869),
    88: (-1.537170, -4.423206, 4.745470), 94: (0.000000, -1.724003, 6.601390),
    95: (-1.826614, -4.399531, 4.399021), 97: (-0.597442, -2.013686, 5.866456),
    98: (-1.405627, -1.714196, 5.241087), 101: (-3.327324, 0.104863, 4.113860),
    105: (-3.986562, 5.109487, 4.466315), 107: (-1.395634, 5.011963, 5.316032),
    108: (-1.619500, 6.599217, 4.921106), 109: (-1.891399, 8.236377, 4.274997),
    115: (-1.305757, -0.672779, 6.415959), 116: (-6.465170, 0.937119, 1.689873),
    117: (-5.258659, 0.945811, 2.974312), 118: (-4.432338, 0.722096, 3.522615),
    123: (-6.338145, -0.529279, 1.881175), 133: (-1.856432, 2.585245, 3.757904),
    144: (-3.670075, 2.360153, 3.635230), 145: (-3.177186, 2.294265, 3.775704),
    151: (0.000000, 6.545390, 5.027311), 152: (0.000000, -9.403378, 4.264492),
    153: (-2.724032, 2.315802, 3.777151), 154: (-2.288460, 2.398891, 3.697603),
    155: (-1.998311, 2.496547, 3.689148), 157: (-2.288460, 2.886504, 3.775031),
    158: (-2.724032, 2.961810, 3.871767), 159: (-3.177186, 2.964136, 3.876973),
    160: (-3.670075, 2.927714, 3.724325), 161: (-4.018389, 2.857357, 3.482983),
    163: (-4.018389, 2.483695, 3.440898), 168: (0.000000, 3.271027, 5.236015),
    173: (-1.998311, 2.743838, 3.744030), 178: (-1.098819, -4.458788, 5.120727),
    187: (-5.278538, -2.238942, 2.861224), 191: (-1.845110, -4.098880, 4.247264),
    195: (0.000000, 1.059413, 6.774605), 197: (0.000000, 1.728369, 6.316750),
    205: (-3.832928, -1.537326, 4.137731), 220: (-0.923043, -0.529042, 7.003423),
    246: (-4.253081, 2.772296, 3.315305), 249: (4.253081, 2.577646, 3.279702),
    263: (4.445859, 2.663991, 3.173422), 266: (2.844939, -0.720868, 4.433130),
    275: (0.496396, -0.475659, 7.440358), 276: (5.253307, 3.881582, 3.363159),
    278: (1.608635, -0.942516, 5.814193), 282: (3.734964, 4.508230, 4.550454),
    283: (4.588603, 4.302037, 4.048484), 285: (1.220941, 4.142165, 5.106035),
    291: (2.456206, -4.342621, 4.283884), 293: (4.985894, 4.802461, 3.751977),
    294: (1.592294, -1.257709, 5.456949), 295: (2.644548, 4.524654, 4.921559),
    296: (2.760292, 5.100971, 5.015990), 297: (3.523964, 8.005976, 3.729163),
    299: (3.063932, 6.566144, 4.529981), 300: (5.720968, 4.254584, 2.830852),
    308: (2.153084, -4.276322, 4.038093), 310: (1.469132, -4.036351, 4.604908),
    311: (1.024340, -3.989851, 4.926693), 312: (0.533422, -3.993222, 5.138202),
    317: (0.583218, -4.517982, 5.339869), 318: (1.537170, -4.423206, 4.745470),
    324: (1.826614, -4.399531, 4.399021), 326: (0.597442, -2.013686, 5.866456),
    327: (1.405627, -1.714196, 5.241087), 330: (3.327324, 0.104863, 4.113860),
    334: (3.986562, 5.109487, 4.466315), 336: (1.395634, 5.011963, 5.316032),
    337: (1.619500, 6.599217, 4.921106), 338: (1.891399, 8.236377, 4.274997),
    344: (1.305757, -0.672779, 6.415959), 345: (6.465170, 0.937119, 1.689873),
    346: (5.258659, 0.945811, 2.974312), 347: (4.432338, 0.722096, 3.522615),
    352: (6.338145, -0.529279, 1.881175), 362: (1.856432, 2.585245, 3.757904),
    373: (3.670075, 2.360153, 3.635230), 374: (3.177186, 2.294265, 3.775704),
    380: (2.724032, 2.315802, 3.777151), 381: (2.288460, 2.398891, 3.697603),
    382: (1.998311, 2.496547, 3.689148), 384: (2.288460, 2.886504, 3.775031),
    385: (2.724032, 2.961810, 3.871767), 386: (3.177186, 2.964136, 3.876973),
    387: (3.670075, 2.927714, 3.724325), 388: (4.018389, 2.857357, 3.482983),
    390: (4.018389, 2.483695, 3.440898), 398: (1.998311, 2.743838, 3.744030),
    402: (1.098819, -4.458788, 5.120727), 411: (5.278538, -2.238942, 2.861224),
    415: (1.845110, -4.098880, 4.247264), 425: (3.832928, -1.537326, 4.137731),
    440: (0.923043, -0.529042, 7.003423), 466: (4.253081, 2.772296, 3.315305),
}

CANONICAL_POSE_3D: np.ndarray = np.array([CANONICAL_3D[i] for i in POSE_POINTS], np.float64)
CANONICAL_POSE_3D.setflags(write=False)
