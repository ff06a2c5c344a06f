"""The defaults that the API's functions and the command line share: one value each, in a module
that imports nothing, so that ``--help`` shows them without importing TensorFlow."""

#: Side of the square input of the paper's network (Table 1: 224x224 RGB).
INPUT_SIZE = 224
#: ImageNet's (ILSVRC 2012) classes: the classifier's width with the published weights.
IMAGENET_CLASSES = 1000
#: Crops per forward pass when evaluating.
EVAL_BATCH_SIZE = 128
#: Images per forward pass when reading image files (predict, features, explain).
IMAGE_BATCH_SIZE = 32
#: Classes listed per image by predict.
TOP_K = 5
#: How features turns a layer's map into one vector per image; ``None`` keeps the whole map.
POOLINGS = ("avg", "max", None)
#: Images that verify runs through each artefact, and its timed batch-1 calls per artefact.
VERIFY_IMAGES = 512
LATENCY_RUNS = 20
#: Images of the built-in shapes set that ``samples`` writes, and their side in pixels.
SAMPLE_IMAGES = 8
SAMPLE_SIZE = 128
