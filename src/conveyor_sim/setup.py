from setuptools import find_packages, setup

package_name = "conveyor_sim"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/worlds", ["conveyor_sim/worlds/recycling_cell.sdf"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="s1s2 maintainers",
    maintainer_email="maintainers@s1s2.dev",
    description="Recycling conveyor cell: MuJoCo simulation (embedded default), Gazebo world generation, lighting domains, scripted expert, recording and scoring.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "conveyor_sim_node = conveyor_sim.node:main",
            "conveyor_sim_gz_relay = conveyor_sim.gz_relay:main",
            "oracle_planner_node = conveyor_sim.oracle_node:main",
        ]
    },
)
