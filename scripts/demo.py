"""Person Finder demo: synthetic street scenes and a video, indexed and searched by text.

Run it through ``./run_demo.sh`` (which sets up ``.venv`` first). With access
to the Hugging Face hub it uses the real default models; without, it says so
and uses a tiny SigLIP fine-tuned here on synthetic people, and the scenes'
known person boxes instead of a detector.
"""

import argparse
import os
import socket
import sys

from person_finder.core import contract, defaults
from person_finder.testing import synthetic

QUERY = "a person in a red top and blue trousers"
TARGET = synthetic.PersonSpec("red", "blue", long_sleeves=True, bag="backpack", bag_color="black")


def hub_reachable(host="huggingface.co", timeout=3.0):
    """True when the Hugging Face hub answers on HTTPS and offline mode is off."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def build_media(workdir, num_scenes, num_frames):
    """Write scenes (the target person in some of them) and one video; returns (scenes, video truth)."""
    others = [s for s in synthetic.random_specs(12, seed=7) if (s.upper_color, s.lower_color) != ("red", "blue")]
    per_scene = []
    for i in range(num_scenes):
        people = [others[(2 * i + j) % len(others)] for j in range(3)]
        if i % 2 == 0:
            people.insert(i % 3, TARGET)
        per_scene.append(people)
    scenes = synthetic.write_scenes(os.path.join(workdir, "scenes"), per_scene, seed=1)
    video = synthetic.write_video(os.path.join(workdir, "video", "street.mp4"), [others[0], TARGET, others[1]],
                                  num_frames=num_frames, seed=2)
    return scenes, video


def load_datasets(scenes, video, name):
    """Two datasets (FiftyOne keeps images and videos apart): scenes with true boxes, and the video."""
    import fiftyone as fo

    for suffix in ("images", "video"):
        if fo.dataset_exists(f"{name}-{suffix}"):
            fo.delete_dataset(f"{name}-{suffix}")
    images = fo.Dataset(f"{name}-images", persistent=True)
    images.add_samples([scene.to_sample() for scene in scenes])
    videos = fo.Dataset(f"{name}-video", persistent=True)
    videos.add_sample(video.to_sample())
    return images, videos


def true_person(row, scenes, video):
    """The synthetic person under a ranked row's box (best IoU with the known boxes), as a description."""
    from person_finder.core.search.tracking import iou

    def xyxy(box):
        return [box[0], box[1], box[0] + box[2], box[1] + box[3]]

    if row["frame_number"] is None:
        scene = next(s for s in scenes if s.filepath == row["filepath"])
        candidates = zip(scene.specs, scene.boxes)
    else:
        candidates = [(video.specs[p], frames[row["frame_number"]]) for p, frames in video.tracks.items()
                      if row["frame_number"] in frames]
    best = max(candidates, key=lambda c: iou(xyxy(c[1]), xyxy(row["bounding_box"])), default=None)
    return synthetic.describe(best[0]) if best else "?"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", default=QUERY)
    parser.add_argument("--workdir", default=os.path.expanduser("~/.cache/person-finder/demo"))
    parser.add_argument("--name", default="person-finder-demo")
    parser.add_argument("--offline", action="store_true", help="use the small local models even when online")
    parser.add_argument("--matcher", help="a matcher folder or hub id to use instead of the automatic choice")
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args(argv)

    from person_finder.core.progress import print_progress
    from person_finder.core.search import index_persons, rank_persons, search_persons

    os.makedirs(args.workdir, exist_ok=True)
    if args.matcher:
        print(f"Using the matcher {args.matcher} and the scenes' known person boxes")
        matcher, detector, detections_field = args.matcher, None, "ground_truth"
    elif not args.offline and hub_reachable():
        print(f"Using the real default models: matcher {defaults.MATCHER_MODEL}, detector {defaults.DETECTOR_MODEL}")
        matcher, detector, detections_field = defaults.MATCHER_MODEL, defaults.DETECTOR_MODEL, None
    else:
        from person_finder.testing.people_training import finetune_tiny_siglip

        print("No access to the Hugging Face hub (or --offline): using small local models instead.\n"
              "  matcher: a tiny SigLIP fine-tuned on synthetic people (about 2 minutes on a CPU)\n"
              "  detector: none, the scenes' known person boxes are used (field 'ground_truth')")
        matcher = finetune_tiny_siglip(os.path.join(args.workdir, "models", "tiny-siglip-people"))
        detector, detections_field = None, "ground_truth"

    scenes, video = build_media(args.workdir, args.scenes, args.frames)
    images, videos = load_datasets(scenes, video, args.name)
    for dataset in (images, videos):
        print(f"\nIndexing the people of {dataset.name} ({dataset.media_type}s)")
        index_persons(dataset, matcher=matcher, detector=detector, detections_field=detections_field,
                      overwrite=True, on_progress=print_progress)
        search_persons(dataset, args.query)
        rows = rank_persons(dataset, args.query, k=5)
        print(f"\nTop matches for {args.query!r} in {dataset.name}:")
        print(f"{'rank':>4}  {'similarity':>10}  {'probability':>11}  {'match':>5}  {'where':<34} who (ground truth)")
        for rank, row in enumerate(rows, 1):
            where = os.path.basename(row["filepath"])
            if row["frame_number"] is not None:
                where += f" frame {row['frame_number']} track {row['track_id']}"
            probability = "-" if row["probability"] is None else f"{row['probability']:.3f}"
            print(f"{rank:>4}  {row['similarity']:>10.3f}  {probability:>11}  {str(row['match']):>5}  {where:<34} "
                  f"{true_person(row, scenes, video)}")
    spans = videos.first()[contract.VIDEO_MATCHES_FIELD]
    if spans is not None:
        for span in spans.detections:
            print(f"video: track {span.index} matches in frames {span.support[0]}-{span.support[1]} "
                  f"(score {span.confidence:.3f}); truth for the target: frames {video.visible_frames(1)}")
    print(f"\nOpen the results in the App:\n  .venv/bin/fiftyone app launch {images.name}\n"
          f"  (or in Python: fo.launch_app(fo.load_dataset({images.name!r})), then open the Person Finder panel)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
