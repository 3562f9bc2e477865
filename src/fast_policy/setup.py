from setuptools import find_packages, setup

package_name = "fast_policy"

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
    description="System 1: a small ONNX policy run by ONNX Runtime in a 50 Hz loop that tracks the latest goal, with joint limits and a safe hold.",
    license="Apache-2.0",
    entry_points={"console_scripts": ["fast_policy_node = fast_policy.node:main"]},
)
