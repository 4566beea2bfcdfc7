// swift-tools-version: 6.0
// Host side of Lockstep: the portable kernel code (Kernel/Core, SMP, Sched, Runtime) built
// as an ordinary library for `swift test`, and the QEMU test harness.
// The kernel image itself is built by the Makefile (Embedded Swift + nasm).
import PackageDescription

let package = Package(
  name: "Lockstep",
  targets: [
    // The same files the kernel compiles, as one host module.
    .target(
      name: "LockstepKernel",
      path: "Kernel",
      exclude: ["Arch", "Init"],
      sources: ["Core", "SMP", "Sched", "Runtime"],
      swiftSettings: [.enableExperimentalFeature("Extern")]
    ),
    .testTarget(name: "HostTests", dependencies: ["LockstepKernel"], path: "Tests/HostTests"),
    // The harness: boots QEMU configurations and judges their serial logs.
    .target(name: "HarnessKit", dependencies: ["LockstepKernel"], path: "Tests/Harness/Kit"),
    .executableTarget(
      name: "lockstep-harness", dependencies: ["HarnessKit"], path: "Tests/Harness/Main"),
    .testTarget(
      name: "HarnessTests", dependencies: ["HarnessKit", "LockstepKernel"],
      path: "Tests/HarnessTests"),
  ]
)
