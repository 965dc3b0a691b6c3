// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals = Target.Dependency.product(name: "UnixSignals", package: "swift-service-lifecycle")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let hummingbirdTLS = Target.Dependency.product(name: "HummingbirdTLS", package: "hummingbird")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let coreMetrics = Target.Dependency.product(name: "CoreMetrics", package: "swift-metrics")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let mustache = Target.Dependency.product(name: "Mustache", package: "swift-mustache")
let nioHTTPTypes = Target.Dependency.product(name: "NIOHTTPTypes", package: "swift-nio-extras")
let nio: [Target.Dependency] = ["NIOCore", "NIOPosix", "NIOHTTP1"].map { .product(name: $0, package: "swift-nio") }

let package = Package(
    name: "Bookend",
    products: [
        .library(name: "Bookend", targets: ["Bookend"]),
        .executable(name: "bookend", targets: ["bookend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // libsqlite3 from the system (Debian: libsqlite3-dev); no vendored amalgamation.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "SQLite", dependencies: ["CSQLite"], swiftSettings: swiftSettings),
        // Fork/exec shim in C: only async-signal-safe code may run between fork and exec.
        .target(name: "CSupervisor"),
        .target(name: "Supervisor", dependencies: ["CSupervisor"], swiftSettings: swiftSettings),
        // Opening, creating and removing paths beneath a directory descriptor without following links;
        // in C because openat2 is only reachable through the variadic syscall(2).
        .target(name: "CBeneath"),
        .target(
            name: "Bookend",
            dependencies: ["SQLite", "Supervisor", "CBeneath", "BatchModels", logging, serviceLifecycle, coreMetrics],
            swiftSettings: swiftSettings,
            plugins: ["EmbedMigrations"]
        ),
        // The Prometheus registry behind `GET /metrics`: the engine's swift-metrics counters and
        // histograms land in it, and gauges of stored state are read at scrape time.
        .target(name: "Observability", dependencies: ["Bookend", coreMetrics, prometheus], swiftSettings: swiftSettings),
        // The Azure Batch wire models (Codable, with the Azure property names and enum values), shared by
        // the client, the CLI and the API; Foundation only.
        .target(name: "BatchModels", swiftSettings: swiftSettings),
        // A client of the Azure Batch REST API with Shared Key signing, for the CLI (and any Swift program).
        // https goes through swift-nio-ssl: FoundationNetworking on Linux cannot trust a custom CA.
        .target(name: "Client", dependencies: ["BatchModels", crypto, nioSSL] + nio, swiftSettings: swiftSettings),
        // The web dashboard under `/ui/`: server-rendered pages over the engine's reads, with its own
        // sign-in and sessions; templates and assets are Swift string constants. API mounts it.
        .target(name: "Dashboard", dependencies: ["Bookend", hummingbird, mustache, crypto, logging], swiftSettings: swiftSettings),
        // The Azure Batch data-plane REST API over the engine (and the dashboard on the same port).
        .target(name: "API", dependencies: ["Bookend", "BatchModels", "Observability", "Dashboard", coreMetrics, hummingbird, hummingbirdTLS, nioSSL, nioHTTPTypes, crypto, logging, serviceLifecycle], swiftSettings: swiftSettings),
        .executableTarget(
            name: "bookend",
            dependencies: ["Bookend", "BatchModels", "SQLite", "Client", "API", "Dashboard", "Observability", argumentParser, logging, serviceLifecycle, unixSignals],
            swiftSettings: swiftSettings
        ),

        // `make bench`: the benchmark program, and a C program tasks run to read the clock when they start.
        .executableTarget(name: "bookend-bench", dependencies: ["Bookend", "SQLite", "Client"], swiftSettings: swiftSettings),
        // Linked statically: SwiftPM links every executable with the Swift runtime and libstdc++, and
        // loading those shared libraries took about 1.7 ms of this program's 2 ms start-up, which the
        // latency floor then counted as spawn time (docs/performance.md, "Changes of 2026-12-03,
        // fourth sitting"). Static, it starts as any small C program does, with no loader at all.
        .executableTarget(name: "bench-stamp", linkerSettings: [.unsafeFlags(["-static-executable"])]),

        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["MigrationEmbedder"]),
        .executableTarget(name: "MigrationEmbedder", path: "Plugins/MigrationEmbedder"),

        // Helpers the test targets share (free ports, running programs, blocking work off the pool).
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "SQLiteTests", dependencies: ["SQLite", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BookendTests", dependencies: ["Bookend", "SQLite", "Supervisor", "CBeneath", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ClientTests", dependencies: ["Client", "BatchModels", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "DashboardTests",
            dependencies: [
                "Dashboard", "API", "Bookend", crypto, logging, mustache, hummingbird, .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "APITests",
            dependencies: [
                "API", "Bookend", "BatchModels", "Client", "Observability", "TestSupport", crypto, logging, serviceLifecycle,
                // `app.test(.router)`: routing and input rules without a socket.
                hummingbird, .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
