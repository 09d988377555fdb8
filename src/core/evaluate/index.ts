/**
 * Evaluation: build ONNX graphs from GPT-2 / Llama checkpoints (or run ONNX files as they are) in
 * onnxruntime-node, tokenise, generate, and measure perplexity / accuracy / KL / agreement / speed.
 */
export { detectArchitecture, readSidecarConfig, type ArchitectureOptions, type TransformerArchitecture, type Gpt2Architecture, type LlamaArchitecture, type RopeOrder, type GeluKind } from './architecture';
export { buildGraph, buildGraphFor } from './graph';
export { checkpointWeights, type WeightSource, type WeightSourceOptions } from './graphCommon';
export { loadModel, requireTokenizer, type LanguageModel, type LoadModelOptions } from './model';
export { loadTokenizer, tokenizerFromFile, type Tokenizer, type EncodeOptions } from './tokenizer';
export { CharTokenizer, TokenizerError } from './tokenizerChar';
export { SentencePieceTokenizer } from './tokenizerSpm';
export { ByteLevelBpeTokenizer } from './tokenizerBpe';
export { generate, generateText, seededRandom, argmaxRow, sampleRow, type GenerateOptions, type Generation, type TextGeneration } from './generate';
export { scoreText, compareModels, scoringWindows, type TextMetrics, type ComparisonMetrics, type WindowOptions } from './metrics';
export { evaluateModel, type EvaluateOptions, type EvaluationReport, type EvaluationSample } from './evaluate';
export { SAMPLE_SHAKESPEARE, SAMPLE_STORY, sampleTextFor } from './sampleText';
export { densifyFactorized } from './factorized';
export { residualOutputName, type GraphBuildOptions, type GraphStats } from './graphCommon';
export { captureResiduals, readPromptFile, promptIds, residualOutputs, type ResidualCapture, type Pooling } from './activations';
export { differenceInMeans, directionsBetween, writeDirection, type DirectionSet, type LayerDirection } from './directions';
export { factorizedLinear, mpoChainMacs, factorizationParams } from './factorizedGraph';
export { runScalpelDemo, type ScalpelDemoOptions, type ScalpelDemoReport } from './scalpelDemo';
export { compressionTable, blockMatrices, type CompressionTable, type CompressionRow, type CompressionTableOptions } from './compressionTable';
