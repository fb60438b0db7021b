"""Cut an SSD ONNX graph just before its NonMaxSuppression node.

The outputs become the NMS node's two inputs: decoded boxes [1, N, 4] and scores [1, C, N].
tract cannot run the data-dependent Pad that follows NMS, and vigil does NMS itself.
Usage: python cut_before_nms.py FULL.onnx OUT.onnx
"""
import sys

import onnx
import onnx.utils


def main(src: str, dst: str) -> None:
    model = onnx.load(src)
    nms = [n for n in model.graph.node if n.op_type == "NonMaxSuppression"]
    if len(nms) != 1:
        sys.exit(f"expected one NonMaxSuppression node in {src}, found {len(nms)}")
    inputs = [i.name for i in model.graph.input]
    onnx.utils.extract_model(src, dst, inputs, [nms[0].input[0], nms[0].input[1]])
    print(f"{dst}: inputs {inputs}, outputs {[nms[0].input[0], nms[0].input[1]]}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
