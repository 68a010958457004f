from setuptools import find_packages, setup

REQUIREMENTS = [
    "torch>=2.9",
    "torchaudio>=2.9",
    "transformers>=5.23,<6",
    "diffusers>=0.42,<0.43",
    "huggingface-hub>=1.0",
    "safetensors>=0.6",
    # Audio files are decoded by FFmpeg's libraries through torchcodec (the ffmpeg package provides them).
    "torchcodec>=0.8",
    "numpy",
]
EXTRAS = {
    "train": ["datasets>=5.2,<6", "evaluate>=0.4.6", "accelerate>=1.1", "matplotlib"],
    "demo": ["gradio>=5", "matplotlib"],
    "export": ["onnx>=1.17", "onnxscript>=0.5", "onnxruntime>=1.20"],
    "annotate": ["datasets>=5.2,<6", "accelerate>=1.1"],
    "test": ["pytest>=8", "selenium>=4.20"],
}
EXTRAS["dev"] = sorted({requirement for group in EXTRAS.values() for requirement in group})

setup(
    name="gen-ser",
    version="0.1.0",
    description="Gen-SER: speech emotion recognition as distribution transport, for transformers and diffusers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["modeling_genser", "pipelines", "training", "training.*"]),
    package_data={"training": ["metrics/ser_metrics/*.py", "metrics/dimensional_metrics/*.py", "configs/*.json", "model_card.md"]},
    install_requires=REQUIREMENTS,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "genser-annotate = pipelines.bulk_annotator:main",
            "genser-adapt = training.run_genser:adapt_command",
        ]
    },
)
