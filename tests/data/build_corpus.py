"""Rebuild the real-data test corpus from the files shipped in the `deepforest` wheel on PyPI.

    pip download --no-deps deepforest==2.1.0 -d /tmp/df && unzip -q /tmp/df/*.whl -d /tmp/df
    .venv/bin/python tests/data/build_corpus.py /tmp/df/deepforest/data

The photos and boxes are deepforest's (NEON airborne RGB tiles hand-labelled with labelImg,
MIT licence; see SOURCES.md). The folder layouts are the ones Roboflow and labelImg write, so
the corpus meets Visor's readers as users' exports do. Deterministic: the same input gives the
same files.
"""

from __future__ import annotations

import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

HERE = Path(__file__).parent
Box = tuple[str, float, float, float, float]  # class, x0, y0, x1, y1 (pixels)


def voc_boxes(xml_file: Path) -> list[Box]:
    root = ET.parse(xml_file).getroot()
    return [
        (
            obj.findtext("name") or "",
            *(float(obj.findtext(f"bndbox/{k}") or 0) for k in ("xmin", "ymin", "xmax", "ymax")),
        )  # type: ignore[misc]
        for obj in root.iter("object")
    ]


def tile_boxes(boxes: list[Box], x: int, y: int, w: int, h: int) -> list[Box]:
    """Boxes clipped to a tile, kept when at least 40% of their area is inside it."""
    kept = []
    for name, x0, y0, x1, y1 in boxes:
        cx0, cy0, cx1, cy1 = max(x0, x), max(y0, y), min(x1, x + w), min(y1, y + h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        if (cx1 - cx0) * (cy1 - cy0) < 0.4 * (x1 - x0) * (y1 - y0):
            continue
        kept.append((name, cx0 - x, cy0 - y, cx1 - x, cy1 - y))
    return kept


def save_jpeg(image: Image.Image, path: Path, quality: int = 80) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path, "JPEG", quality=quality, optimize=True)


def labelimg_folder(src: Path, out: Path) -> None:
    """deepforest's own folder as it ships: XML files beside the images, as labelImg saves
    them (OSBS_029.xml names the .tif; a .png of the same picture sits beside it)."""
    for name in ("OSBS_029.tif", "OSBS_029.png", "OSBS_029.xml", "SOAP_061.png", "SOAP_061.xml"):
        shutil.copyfile(src / name, out / name)
    shutil.copyfile(src / "SOAP_031.png", out / "SOAP_031.png")  # unlabelled


def voc_folder(src: Path, out: Path) -> None:
    """The classic VOC layout with ImageSets/Main/{trainval,test}.txt."""
    for stem, split in (("OSBS_029", "trainval"), ("SOAP_061", "test")):
        image = src / (stem + ".png")
        save_jpeg(Image.open(image), out / "JPEGImages" / f"{stem}.jpg", 85)
        tree = ET.parse(src / f"{stem}.xml")
        tree.getroot().find("filename").text = f"{stem}.jpg"  # type: ignore[union-attr]
        (out / "Annotations").mkdir(parents=True, exist_ok=True)
        tree.write(out / "Annotations" / f"{stem}.xml")
        sets = out / "ImageSets" / "Main"
        sets.mkdir(parents=True, exist_ok=True)
        (sets / f"{split}.txt").write_text(stem + "\n")


def coco_export(src: Path, out: Path) -> None:
    """A Roboflow COCO export: `train/`, `valid/`, `test/`, each with `_annotations.coco.json`
    beside its images; 12 tiles of 760x500 cut from the 2299x2472 YELL photo (574 trees)."""
    stem = "2019_YELL_2_528000_4978000_image_crop2"
    photo = Image.open(src / f"{stem}.png")
    boxes = voc_boxes(src / f"{stem}.xml")
    tiles = [(c * 760, r * 500) for r in range(4) for c in range(3)]
    split_of = ["train"] * 8 + ["valid"] * 2 + ["test"] * 2
    categories = [
        {"id": 0, "name": "trees", "supercategory": "none"},
        {"id": 1, "name": "Tree", "supercategory": "trees"},
    ]
    for split in ("train", "valid", "test"):
        images, annotations = [], []
        for index, (x, y) in enumerate(tiles):
            if split_of[index] != split:
                continue
            file_name = f"{stem}_{index:02d}_jpg.rf.{index:032x}.jpg"
            save_jpeg(photo.crop((x, y, x + 760, y + 500)), out / split / file_name)
            image_id = len(images)
            images.append(
                {
                    "id": image_id,
                    "license": 1,
                    "file_name": file_name,
                    "height": 500,
                    "width": 760,
                    "date_captured": "2019-07-01T00:00:00+00:00",
                }
            )
            for _, x0, y0, x1, y1 in tile_boxes(boxes, x, y, 760, 500):
                w, h = round(x1 - x0, 1), round(y1 - y0, 1)
                annotations.append(
                    {
                        "id": len(annotations),
                        "image_id": image_id,
                        "category_id": 1,
                        "bbox": [round(x0, 1), round(y0, 1), w, h],
                        "area": round(w * h, 2),
                        "segmentation": [],
                        "iscrowd": 0,
                    }
                )
        document = {
            "info": {"year": "2019", "version": "1", "description": "NEON YELL tree crowns"},
            "licenses": [{"id": 1, "url": "https://opensource.org/license/mit", "name": "MIT"}],
            "categories": categories,
            "images": images,
            "annotations": annotations,
        }
        (out / split / "_annotations.coco.json").write_text(json.dumps(document))


def yolo_export(src: Path, out: Path) -> None:
    """A Roboflow YOLOv8 export with polygon labels: `data.yaml` pointing at `../train/images`
    (relative to the wrong place, as Roboflow writes it), `train|valid|test/{images,labels}`;
    OSBS_029 cut in quarters (train), SOAP_061 in halves (valid), SOAP_031 (test, no labels).
    One label line names class 3 of 3 (indices 0..2), as exports with a deleted class do."""
    names = ["Alive", "Dead", "Tree"]
    pieces = [("OSBS_029", "train", (x, y, 200, 200)) for y in (0, 200) for x in (0, 200)]
    pieces += [("SOAP_061", "valid", (0, y, 400, 200)) for y in (0, 200)]
    pieces += [("SOAP_031", "test", (0, 0, 400, 400))]
    for number, (stem, split, (x, y, w, h)) in enumerate(pieces):
        name = f"{stem}_{number}_png.rf.{number:032x}"
        save_jpeg(
            Image.open(src / f"{stem}.png").crop((x, y, x + w, y + h)),
            out / split / "images" / f"{name}.jpg",
        )
        xml = src / f"{stem}.xml"
        lines = []
        for i, (cls, x0, y0, x1, y1) in enumerate(
            tile_boxes(voc_boxes(xml), x, y, w, h) if xml.exists() else []
        ):
            index = names.index(cls)
            if i % 3 == 2:  # a box line (class cx cy w h) among the polygons
                values = ((x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h)
                lines.append(f"{index} " + " ".join(f"{v:.6f}" for v in values))
            else:  # a polygon: class x1 y1 x2 y2 ... (normalised), as segmentation exports write
                corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
                lines.append(
                    f"{index} " + " ".join(f"{px / w:.6f} {py / h:.6f}" for px, py in corners)
                )
        if number == 0:
            lines.append("3 0.5 0.5 0.1 0.1")
        labels = out / split / "labels" / f"{name}.txt"
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("".join(line + "\n" for line in lines))
    (out / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
        f"nc: {len(names)}\nnames: {json.dumps(names)}\n"
    )


def classification_tree(src: Path, out: Path) -> None:
    """Class folders of box crops under `train/` and `validate/` (every fourth crop)."""
    count = 0
    for stem in ("OSBS_029", "SOAP_061"):
        photo = Image.open(src / f"{stem}.png")
        for cls, x0, y0, x1, y1 in voc_boxes(src / f"{stem}.xml"):
            split = "validate" if count % 4 == 3 else "train"
            crop = photo.crop((int(x0), int(y0), int(x1), int(y1)))
            save_jpeg(crop, out / split / cls / f"{stem}_{count:03d}.jpg", 90)
            count += 1


def main(src: Path) -> None:
    builders = {
        "labelimg_trees": labelimg_folder,
        "voc_trees": voc_folder,
        "coco_roboflow_trees": coco_export,
        "yolo_roboflow_trees": yolo_export,
        "classification_trees": classification_tree,
    }
    for name, build in builders.items():
        out = HERE / name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        build(src, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
