import Foundation
import HarnessKit

// lockstep-harness: boots Lockstep in QEMU and judges the result. See `Invocation.usage`.

let arguments = Array(CommandLine.arguments.dropFirst())
do {
  exit(Commands.execute(try Invocation.parse(arguments)))
} catch {
  Console.standardError("lockstep-harness: \(error.message)\n\(Invocation.usage)\n")
  exit(2)
}
