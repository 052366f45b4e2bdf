"""YOLO exports through ultralytics' own dataset checks, where ultralytics runs (it needs a
torchvision that loads beside torch: not the CPU build this project pins).

    visor export NAME exports/NAME --format yolo      # for each dataset, on this machine
    python3 scripts/ultralytics_check.py exports      # where ultralytics is installed

Every `*/data.yaml` under the folder goes through `check_det_dataset` (no download), and
each split through `YOLODataset`, which verifies every image and label file; prints images,
boxes, the largest class index and whether every coordinate is in [0, 1], per split.
Set YOLO_CONFIG_DIR to a folder holding an Arial.ttf where nothing can be downloaded.
"""

import json
import os
import sys
from pathlib import Path

from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import check_det_dataset

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
report = {}
for yaml_path in sorted(root.glob("*/data.yaml")):
    name = yaml_path.parent.name
    try:
        data = check_det_dataset(str(yaml_path), autodownload=False)
        splits = {}
        for key in ("train", "val", "test"):
            if not data.get(key):
                continue
            ds = YOLODataset(
                img_path=data[key],
                data=data,
                task="detect",
                imgsz=640,
                augment=False,
                cache=False,
                rect=False,
                batch_size=1,
            )
            splits[key] = {
                "images": len(ds.labels),
                "boxes": int(sum(len(lb["cls"]) for lb in ds.labels)),
                "max_class": int(
                    max((lb["cls"].max() for lb in ds.labels if len(lb["cls"])), default=-1)
                ),
                "coords_in_0_1": bool(
                    all(((lb["bboxes"] >= 0) & (lb["bboxes"] <= 1)).all() for lb in ds.labels)
                ),
            }
        report[name] = {"ok": True, "nc": data["nc"], "names": data["names"], "splits": splits}
    except Exception as e:
        report[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
print(json.dumps(report, indent=1, default=str))
out = os.environ.get("OUT")
if out:
    Path(out, "ultralytics_check.json").write_text(json.dumps(report, indent=1, default=str))
sys.exit(0 if all(r["ok"] for r in report.values()) else 1)
