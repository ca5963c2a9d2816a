"""Computer vision applications of course 4 week 3: object detection.

- boxes: corners <-> center-size, scaling, clipping, areas, pairwise ``iou``
- nms: the course's greedy ``non_max_suppression`` (per class, equal to OpenCV's)
- localization, landmarks: classification with localization, landmark heads and losses
- sliding: the naive sliding-windows detector and ``convolutionalize``
- yolo, yolo_loss: YOLOv2 targets, decoding, filtering, the loss, k-means anchors
- proposals, rcnn: selective-search region proposals and the R-CNN baseline
- evaluation: precision-recall, AP per class, mAP@0.5 and COCO's mAP@0.5:0.95
- datasets, draw, detector: detection data, pictures, a small YOLO detector (``strata detect``)
- faces, faces_verify, faces_train (course 4 week 4): L2-normalized encodings, triplet mining,
  P x K batches, verification threshold and ROC, pair classifier, FaceDatabase, the measured
  one-shot task (``strata faces``)
- style, texture, visualize (course 4 week 4): neural style transfer's costs and optimization
  with random multi-scale or VGG-19 features (``strata style``); receptive fields and the
  patches that activate units most (``strata visualize``)
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
from strata.vision.faces import (
    L2Normalize,
    PKSampler,
    batch_all_triplets,
    encode,
    mine_triplets,
    pairwise_distances,
    semi_hard_triplets,
)
from strata.vision.faces_verify import (
    FaceDatabase,
    PairClassifier,
    VerificationReport,
    all_pairs,
    choose_threshold,
    pair_features,
    verification_report,
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
from strata.vision.style import (
    STYLE_LAYERS,
    Preprocessing,
    content_cost,
    generate_noise_image,
    gram_matrix,
    style_cost,
    style_layer_cost,
    total_cost,
    transfer_style,
)
from strata.vision.texture import random_features, vgg_features
from strata.vision.visualize import receptive_fields, top_patches, visualize_units
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
    "L2Normalize", "encode", "pairwise_distances", "batch_all_triplets", "semi_hard_triplets",
    "mine_triplets", "PKSampler", "all_pairs", "choose_threshold", "verification_report",
    "VerificationReport", "pair_features", "PairClassifier", "FaceDatabase",
    "content_cost", "gram_matrix", "style_layer_cost", "style_cost", "total_cost",
    "STYLE_LAYERS", "Preprocessing", "generate_noise_image", "transfer_style",
    "random_features", "vgg_features", "receptive_fields", "top_patches", "visualize_units",
]
