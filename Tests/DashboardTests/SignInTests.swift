import Foundation
import Testing

@testable import Dashboard
