export { mediaGeneration } from './media-generation';
