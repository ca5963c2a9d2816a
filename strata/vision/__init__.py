"""Computer vision applications of course 4 week 3: object detection.

- boxes: corners <-> center-size, scaling, clipping, areas, pairwise ``iou``
- nms: the course's greedy ``non_max_suppression`` (per class, equal to OpenCV's)
- localization, landmarks: classification with localization, landmark heads and losses
- sliding: the naive sliding-windows detector and ``convolutionalize``
- yolo, yolo_loss: YOLOv2 targets, decoding, filtering, the loss, k-means anchors
- proposals, rcnn: selective-search region proposals and the R-CNN baseline
- evaluation: precision-recall, AP per class, mAP@0.5 and COCO's mAP@0.5:0.95
- datasets, draw, detector: detection data, pictures, a small YOLO detector (``strata detect``)
"""

from strata.vision.boxes import (
    box_area,
    center_to_corners,
    clip_boxes,
    corners_to_center,
    iou,
    scale_boxes,
)
from strata.vision.datasets import digit_canvases, shapes_dataset
from strata.vision.detector import detect, detector_network, train_detector
from strata.vision.draw import detection_grid, draw_detections
from strata.vision.evaluation import (
    DetectionReport,
    average_precision,
    evaluate_detections,
    plot_pr_curves,
)
from strata.vision.landmarks import (
    LandmarkHead,
    LandmarkLoss,
    decode_landmarks,
    landmark_loss,
    landmark_target,
    normalized_mean_distance,
)
from strata.vision.localization import (
    LocalizationHead,
    LocalizationLoss,
    decode_localization,
    localization_loss,
    localization_target,
)
from strata.vision.nms import non_max_suppression
from strata.vision.proposals import propose_regions
from strata.vision.rcnn import classify_proposals, proposal_recall, rcnn_detect
from strata.vision.sliding import convolutionalize, sliding_windows, window_corners
from strata.vision.yolo import (
    decode,
    encode_targets,
    filter_boxes,
    from_course_boxes,
    from_course_output,
    kmeans_anchors,
    read_anchors,
    read_class_names,
)
from strata.vision.yolo_loss import YoloLoss, yolo_loss

__all__ = [
    "box_area", "center_to_corners", "clip_boxes", "corners_to_center", "iou", "scale_boxes",
    "non_max_suppression",
    "LocalizationHead", "LocalizationLoss", "decode_localization", "localization_loss",
    "localization_target", "LandmarkHead", "LandmarkLoss", "decode_landmarks", "landmark_loss",
    "landmark_target", "normalized_mean_distance",
    "sliding_windows", "convolutionalize", "window_corners",
    "encode_targets", "decode", "filter_boxes", "from_course_output", "from_course_boxes",
    "read_anchors", "read_class_names", "kmeans_anchors", "YoloLoss", "yolo_loss",
    "propose_regions", "classify_proposals", "rcnn_detect", "proposal_recall",
    "evaluate_detections", "DetectionReport", "average_precision", "plot_pr_curves",
    "digit_canvases", "shapes_dataset", "draw_detections", "detection_grid",
    "detector_network", "train_detector", "detect",
]
