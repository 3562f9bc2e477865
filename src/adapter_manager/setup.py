from setuptools import find_packages, setup

package_name = "adapter_manager"

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
    description="Classifies lighting/context from the camera and hot-swaps the planner's per-environment LoRA adapter.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "adapter_manager_node = adapter_manager.node:main",
            "failure_recorder_node = adapter_manager.failure_node:main",
        ]
    },
)
