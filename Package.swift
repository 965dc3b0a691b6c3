// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")

let package = Package(
    name: "Bookend",
    products: [
        .library(name: "Bookend", targets: ["Bookend"]),
        .executable(name: "bookend", targets: ["bookend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // libsqlite3 from the system (Debian: libsqlite3-dev); no vendored amalgamation.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "SQLite", dependencies: ["CSQLite"], swiftSettings: swiftSettings),
        // Fork/exec shim in C: only async-signal-safe code may run between fork and exec.
        .target(name: "CSupervisor"),
        .target(name: "Supervisor", dependencies: ["CSupervisor"], swiftSettings: swiftSettings),
        .target(
            name: "Bookend",
            dependencies: ["SQLite", "Supervisor", logging],
            swiftSettings: swiftSettings,
            plugins: ["EmbedMigrations"]
        ),
        // A client of the Azure Batch REST API with Shared Key signing, for the CLI (and any Swift program).
        .target(name: "Client", dependencies: [crypto], swiftSettings: swiftSettings),
        .executableTarget(name: "bookend", dependencies: ["Bookend", "SQLite", "Client", argumentParser], swiftSettings: swiftSettings),

        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["MigrationEmbedder"]),
        .executableTarget(name: "MigrationEmbedder", path: "Plugins/MigrationEmbedder"),

        .testTarget(name: "SQLiteTests", dependencies: ["SQLite"], swiftSettings: swiftSettings),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor"], swiftSettings: swiftSettings),
        .testTarget(name: "BookendTests", dependencies: ["Bookend", "SQLite", "Supervisor"], swiftSettings: swiftSettings),
        .testTarget(name: "ClientTests", dependencies: ["Client"], swiftSettings: swiftSettings),
    ]
)
