$version: "2.0"

// AWS Marketplace Image Build Service, as published (marketplaceimagebuild-2017-12-15, with the
// optional DescribeBuilds BuildIds member of the 2019 revision). The botocore JSON under
// models/marketplaceimagebuild/2017-12-15/ is the wire contract; tests/model_drift.rs fails when
// this file and that model disagree on operations, members, required members, constraints or
// errors.

namespace com.amazonaws.marketplaceimagebuild

use aws.api#service
use aws.auth#sigv4
use aws.protocols#awsJson1_1

/// AWS Marketplace customers can use this API to build new images and to retrieve information
/// about all of their builds.
@service(sdkId: "Marketplace Image Build", endpointPrefix: "imagebuild.marketplace")
@sigv4(name: "aws-marketplace")
@awsJson1_1
@title("AWS Marketplace Image Build Service")
service AWSMPImageBuilding {
    version: "2017-12-15"
    operations: [DescribeBuilds, StartBuild]
}

/// Retrieves information about build records for all builds associated with the AWS account
/// in use, in descending order of creation time.
@readonly
@paginated(inputToken: "NextToken", outputToken: "NextToken", pageSize: "MaxResults", items: "Builds")
operation DescribeBuilds {
    input: DescribeBuildsRequest
    output: DescribeBuildsResult
    errors: [
        InternalServerErrorException
        InvalidNextTokenException
        InvalidMaxResultsException
        InvalidFilterException
    ]
}

/// Initiates a build that installs the specified Marketplace product on the source AMI,
/// creating a new AMI in the same region.
operation StartBuild {
    input: StartBuildRequest
    output: StartBuildResult
    errors: [
        InternalServerErrorException
        BuildLimitExceededException
        IdempotentParameterMismatchException
        InstallerMismatchException
        InvalidFulfillmentOptionIdException
        InvalidSourceImageIdException
        InvalidDestinationImageNameException
        InvalidSnsTopicArnException
        UnauthorizedOperationException
    ]
}

structure Build {
    BuildId: String
    DestinationImage: DestinationImage
    FulfillmentOptionIds: StringList
    Products: ProductList
    SourceImage: SourceImage
    SnsTopicArn: String
    Status: BuildStatus
    StandardOutputUrl: String
    StandardErrorUrl: String
    ErrorDetail: ErrorDetail
    StartTime: DateTime
    LastUpdateTime: DateTime
}

list BuildList {
    member: Build
}

enum BuildStatus {
    InProgress
    InternalError
    Failed
    Succeeded
}

timestamp DateTime

structure DescribeBuildsRequest {
    BuildIds: StringList
    NextToken: NextToken
    MaxResults: MaxResults
    Filters: FilterList
}

structure DescribeBuildsResult {
    NextToken: NextToken
    Builds: BuildList
}

structure DestinationImage {
    Id: String
    Description: String
    Name: String
}

enum ErrorCode {
    SSMAgentNotFound
    InstallFailed
}

structure ErrorDetail {
    Code: ErrorCode
    Message: String
}

structure Filter {
    Name: String
    Values: StringList
}

list FilterList {
    member: Filter
}

@range(min: 0, max: 256)
integer MaxResults

@length(min: 1, max: 1024)
string NextToken

structure Product {
    Id: String
    Version: String
    Title: String
}

list ProductList {
    member: Product
}

structure SourceImage {
    Id: String
    Name: String
}

structure StartBuildRequest {
    @idempotencyToken
    ClientToken: String

    @required
    FulfillmentOptionIds: StringList

    @required
    SourceImageId: String

    @required
    DestinationImageName: String

    DestinationImageDescription: String
    SnsTopicArn: String
}

structure StartBuildResult {
    BuildId: String
    Products: ProductList
}

string String

list StringList {
    member: String
}

@error("client")
structure BuildLimitExceededException {
    Message: String
}

@error("client")
structure IdempotentParameterMismatchException {
    Message: String
}

@error("client")
structure InstallerMismatchException {
    Message: String
}

@error("server")
structure InternalServerErrorException {
    Message: String
}

@error("client")
structure InvalidDestinationImageNameException {
    Message: String
}

@error("client")
structure InvalidFilterException {
    Message: String
}

@error("client")
structure InvalidFulfillmentOptionIdException {
    Message: String
}

@error("client")
structure InvalidMaxResultsException {
    Message: String
}

@error("client")
structure InvalidNextTokenException {
    Message: String
}

@error("client")
structure InvalidSnsTopicArnException {
    Message: String
}

@error("client")
structure InvalidSourceImageIdException {
    Message: String
}

@error("client")
structure UnauthorizedOperationException {
    Message: String
}
