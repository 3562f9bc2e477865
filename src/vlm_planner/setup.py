from setuptools import find_packages, setup

package_name = "vlm_planner"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="s1s2 maintainers",
    maintainer_email="maintainers@s1s2.dev",
    description="System 2: a vision-language model loaded with QLoRA (4-bit NF4, double quantization) and peft LoRA adapters; publishes goals at about 1 Hz.",
    license="Apache-2.0",
    entry_points={"console_scripts": ["vlm_planner_node = vlm_planner.node:main"]},
)
