"""Layer 8, running a model outside anovit: the whole scoring path as one ONNX graph (:mod:`.export`) and its
onnxruntime scorer (:mod:`.onnx_scorer`). May import report and everything below; not hub, jobs, app or cli.
"""
