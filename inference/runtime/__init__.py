"""How the network runs at test time: precisions, runtimes, compilation, ONNX export and
int8 quantisation, behind one factory (``backends.make_backend``)."""
