import Foundation

// The QEMU command line for one configuration.

/// Where the guest's serial console goes.
public enum SerialSink: Equatable, Sendable {
  /// Into a log file only (`-serial file:<path>`), for unattended runs.
  case file(String)
  /// Live to QEMU's stdout, and also into a log file (a stdio chardev with `logfile=`), so a
  /// human sees the console as it happens and the harness can still judge it afterwards.
  case console(logPath: String)
  /// A Unix socket QEMU serves at `path` and waits on before it runs the guest
  /// (`server=on,wait=on`), so nothing printed is lost before the harness connects.
  /// `ShellSession` talks to the shell through it and writes the log file itself from
  /// what it reads: QEMU 7.2's `logfile=` on a socket chardev repeats a byte now and then
  /// (one whose write to the socket would have blocked), which the socket does not.
  /// `path` must fit `sun_path` (107 bytes and a NUL).
  case socket(path: String)
}

/// Whether this machine can run KVM guests.
public enum KVM {
  /// True when /dev/kvm exists and this process may open it for reading and writing.
  public static var isUsable: Bool {
    FileManager.default.isReadableFile(atPath: "/dev/kvm")
      && FileManager.default.isWritableFile(atPath: "/dev/kvm")
  }
}

/// What every boot of a harness run shares: which QEMU, which kernel, which accelerator.
public struct QEMUCommand: Equatable, Sendable {
  /// The QEMU executable: a path, or a name looked up in `PATH`.
  public var qemu: String
  /// The kernel image passed with `-kernel`.
  public var kernel: String
  /// The accelerator.
  public var accel: Accel
  /// The GRUB image passed with `-cdrom` to configurations that boot from it.
  public var iso: String

  /// Creates the shared part of the command; `iso` defaults to `lockstep.iso` beside the
  /// kernel image (`make iso` builds build/lockstep.iso beside build/kernel.elf32).
  public init(
    qemu: String = "qemu-system-x86_64", kernel: String, accel: Accel = .tcg, iso: String? = nil
  ) {
    self.qemu = qemu
    self.kernel = kernel
    self.accel = accel
    self.iso = iso ?? QEMUCommand.defaultISO(besideKernel: kernel)
  }

  /// `lockstep.iso` in the kernel image's directory.
  public static func defaultISO(besideKernel kernel: String) -> String {
    // By hand: NSString.deletingLastPathComponent traps on a bare name ("k") in this Foundation.
    guard let slash = kernel.lastIndex(of: "/") else { return "lockstep.iso" }
    return "\(kernel[...slash])lockstep.iso"
  }

  /// The CPU model under KVM, the same as scripts/qemu.sh's: the host's CPU without the
  /// IA32_ARCH_CAPABILITIES MSR, which nested KVM on some hosts cannot set (plain
  /// `-cpu host` aborts there on MSR 0x10a). It offers x2APIC.
  public static let kvmCPUModel = "host,-arch-capabilities"

  /// QEMU's arguments (without the executable) for booting `config`.
  /// - Parameters:
  ///   - config: The configuration.
  ///   - serial: Where the serial console goes.
  /// - Returns: The argument vector.
  public func arguments(for config: BootConfig, serial: SerialSink) -> [String] {
    let accel = config.requiresKVM ? Accel.kvm : self.accel
    var arguments = [
      "-machine", config.machine.rawValue, "-accel", accel.rawValue, "-smp", config.smp,
      "-m", config.memory,
    ]
    switch config.medium {
    case .kernel:
      arguments += ["-kernel", kernel, "-append", config.append]
    case .cdrom:
      // The command line is the image's own; the firmware boots the CD first.
      arguments += ["-cdrom", iso, "-boot", "d"]
    }
    if accel == .kvm && !config.qemuArguments.contains("-cpu") {
      arguments += ["-cpu", QEMUCommand.kvmCPUModel]
    }
    arguments += config.qemuArguments
    arguments += ["-display", "none"]
    switch serial {
    case .file(let path):
      arguments += ["-serial", "file:\(path)"]
    case .console(let path):
      arguments += [
        "-chardev", "stdio,id=console,signal=on,logfile=\(optionValue(path))",
        "-serial", "chardev:console",
      ]
    case .socket(let path):
      arguments += [
        "-chardev",
        "socket,id=console,path=\(optionValue(path)),server=on,wait=on",
        "-serial", "chardev:console",
      ]
    }
    // Status 0 must mean a triple fault, so the CPU reset ends QEMU instead of rebooting.
    arguments += [
      "-monitor", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ]
    return arguments
  }

  /// `text` as a QEMU option value, which escapes a comma by doubling it.
  private func optionValue(_ text: String) -> String {
    text.replacingOccurrences(of: ",", with: ",,")
  }
}
