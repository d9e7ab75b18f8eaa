import Testing
@testable import VoxSync
